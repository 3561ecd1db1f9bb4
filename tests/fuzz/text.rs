//! Phone (E.164 normalisation) and email parsing: no panic on any text, bounded memory, a
//! message on refusal, and the normal form is a fixed point (`parse(render(x)) == x`).

use crate::alloc::{Peak, exclusive};
use crate::budget::{self, Bound, Tally};
use parent_connection::domain::{EmailAddress, PhoneE164, Region};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::cell::RefCell;

/// Parsing one email allocates at most this (the message quotes the value).
const EMAIL_BOUND: Bound = Bound {
    fixed: 64 * 1024,
    per_input_byte: 16,
};

/// Parsing one phone number allocates at most this: the `phonenumber` crate compiles the
/// regular expressions of a region's metadata on first use into an LRU cache of 100, so a
/// parse may compile some (measured: up to about 3 MiB).
const PHONE_BOUND: Bound = Bound {
    fixed: 8 << 20,
    per_input_byte: 16,
};

/// Regions the targets read numbers in.
pub const REGIONS: &[&str] = &["US", "CA", "GB", "DE", "FR", "IN", "BR", "AU", "JP", "MX"];

/// Text a phone field may hold: phone-like characters mostly, any text sometimes.
fn phone_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[+]?[0-9 ()./x#*+-]{0,24}",
        2 => "\\+?[0-9]{1,3}[ -]?[0-9]{2,4}[ -]?[0-9]{3,4}[ -]?[0-9]{3,5}",
        1 => "[+0-9\u{FF10}-\u{FF19}\u{0660}-\u{0669} ;=ext.tel:]{0,30}",
        1 => any::<String>(),
        1 => "[0-9]{1,400}",
        3 => "\\+(1|44|33|49|91|55|61|81|52|353|7) ?[1-9][0-9 ]{6,14}",
        2 => "\\(?[2-9][0-9]{2}\\)? ?[2-9][0-9]{2}-[0-9]{4}",
    ]
}

/// Text an email field may hold: address-like mostly, with the characters that trip
/// parsers (quotes, several `@`, dots, Unicode whose case mapping changes its length).
fn email_text() -> impl Strategy<Value = String> {
    let local = "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~\"@ -]{0,70}";
    let label = "[a-zA-Z0-9\u{0130}\u{212A}\u{1E9E}\u{00DF}\u{0345}\u{03A3}\u{FB00}-]{0,70}";
    prop_oneof![
        6 => "[a-zA-Z0-9._%+-]{1,24}@[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9\u{130}\u{212A}-]{1,12}){1,3}",
        4 => (local, proptest::collection::vec(label, 1..5)).prop_map(|(l, labels)| format!("{l}@{}", labels.join("."))),
        1 => ("[a-z]{60,70}", "[a-z]{60,63}").prop_map(|(l, d)| format!("{l}@{d}.{d}.{d}.com")),
        1 => any::<String>(),
        1 => "[a-z@.]{0,300}",
    ]
}

/// The region codes the tenants may use.
fn region() -> impl Strategy<Value = Region> {
    proptest::sample::select(REGIONS).prop_map(|code| Region::parse(code).expect("region"))
}

/// One phone number in `region`, checked.
pub fn phone_case(raw: &str, region: Region, tally: &RefCell<Tally>) -> Result<(), TestCaseError> {
    let peak = Peak::start();
    let parsed = PhoneE164::parse(raw, region);
    let used = peak.above_start();
    PHONE_BOUND.check(used, raw.len())?;
    match parsed {
        Ok(phone) => {
            let text = phone.as_str();
            prop_assert!(text.starts_with('+'), "{text}");
            prop_assert!(
                (3..=16).contains(&text.len()) && text[1..].bytes().all(|b| b.is_ascii_digit()),
                "not E.164: {text}"
            );
            // The normal form reads back as itself, in the tenant's region and any other.
            for other in [region, Region::default(), Region::parse("GB").unwrap()] {
                let again = PhoneE164::parse(text, other);
                prop_assert_eq!(
                    again.as_ref().ok(),
                    Some(&phone),
                    "{} from {:?} in {}, read in {}: {:?}",
                    text,
                    raw,
                    region.code(),
                    other.code(),
                    again
                );
            }
            Tally::see(tally, raw.len(), used, "valid");
        }
        Err(e) => {
            prop_assert!(!e.0.is_empty());
            Tally::see(tally, raw.len(), used, "refused");
        }
    }
    Ok(())
}

/// One email address, checked.
pub fn email_case(raw: &str, tally: &RefCell<Tally>) -> Result<(), TestCaseError> {
    let peak = Peak::start();
    let parsed = EmailAddress::parse(raw);
    let used = peak.above_start();
    EMAIL_BOUND.check(used, raw.len())?;
    match parsed {
        Ok(email) => {
            let text = email.as_str();
            prop_assert!(text.len() <= 254, "{} bytes: {text}", text.len());
            prop_assert!(
                !text.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{text:?}"
            );
            let again = EmailAddress::parse(text);
            prop_assert_eq!(
                again.as_ref().ok(),
                Some(&email),
                "{:?} from {:?}",
                again,
                raw
            );
            Tally::see(tally, raw.len(), used, "valid");
        }
        Err(e) => {
            prop_assert!(e.0.contains("is not a valid email address"), "{}", e.0);
            Tally::see(tally, raw.len(), used, "refused");
        }
    }
    Ok(())
}

#[test]
fn phone_numbers_parse_to_a_fixed_point_or_a_clear_refusal() {
    let _one = exclusive();
    // The first parse loads the crate's metadata of every region (about 4 MiB, once).
    let _ = PhoneE164::parse("+12025550123", Region::default());
    let tally = RefCell::new(Tally::default());
    budget::run(
        budget::runner(2_000),
        &(phone_text(), region()),
        |(raw, region)| phone_case(&raw, region, &tally),
    );
    Tally::print(&tally, "phone");
}

#[test]
fn email_addresses_parse_to_a_fixed_point_or_a_clear_refusal() {
    let _one = exclusive();
    let tally = RefCell::new(Tally::default());
    budget::run(budget::runner(3_000), &email_text(), |raw| {
        email_case(&raw, &tally)
    });
    Tally::print(&tally, "email");
}
