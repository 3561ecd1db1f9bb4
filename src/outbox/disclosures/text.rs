//! How the disclosure log stores the text it keeps (`disclosures.body_deflate`): raw
//! deflate against a fixed preset dictionary of the wording every invitation and digest
//! shares, behind a one-byte format version. A week's million digests repeat the same
//! template, headings and assignment lines; compressing each text alone would pay for that
//! wording again in every entry, the dictionary lets each entry refer to it instead.
//!
//! The dictionary of a version never changes (stored texts depend on it byte for byte): a
//! better one is a new version, and [`decompress`] keeps reading the old ones.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Format 1: raw deflate (no header, no checksum: the entry's SHA-256 covers the text)
/// with [`DICTIONARY_V1`] preset.
const V1: u8 = 1;

/// The preset dictionary of format 1: the fixed wording of `templates/email/*.txt` and the
/// pieces digests repeat (day and month names, point counts), the most frequent last
/// (deflate reaches nearer matches with shorter codes).
const DICTIONARY_V1: &str = concat!(
    "If you were not expecting this message, you can ignore it; nothing happens until you join.\n\n",
    " invited you to chat about  in Parent Connection, the way  connects teachers with the parents and guardians of their students.\n\n",
    "Join here:\nhttps://",
    "/join/ Sign-in code  Your code is  It expires in  minutes.\n",
    "January February March April May June July August September October November December ",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday America/New_York America/Chicago America/Denver America/Los_Angeles UTC ",
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec 2026 2027 2028 ",
    "Homework Quiz Test Project Essay Lab Reading Worksheet Assignment Class Math English Science History ",
    ": assignments for  (week of ",
    "Hello ,\n\nHere are the assignments of  at : what was due in the past\n",
    "week and what is due in the coming week. Times are in America/New_York.\n\n",
    "You receive this weekly summary because you are a parent or guardian contact of\n",
    " at . Questions about an assignment go to the class's teacher.\n\n",
    "To stop receiving this weekly summary, open this link and confirm (invitations and\n",
    "messages from teachers are not affected):\nhttps:///unsubscribe/\n",
    " and \n-----------\n\nClass \n",
    "  Due in the past week:\n",
    "  Due in the coming week:\n",
    "  - Mon   - Tue   - Wed   - Thu   - Fri   - Sat   - Sun  ",
    ":00 AM  Assignment :30 PM  Assignment :00 PM  Assignment  (1 points)\n (5 points)\n (100 points)\n (10 points)\n",
);

/// Raw deflate window (2^15 bytes, the most deflate has: the whole dictionary stays in
/// reach).
const WINDOW_BITS: u8 = 15;

/// `text` compressed, format version first.
pub fn compress(text: &str) -> Vec<u8> {
    thread_local! {
        // One deflate stream per thread, reset for each text: a new stream allocates and
        // zeroes its ≈ 260 KB of state, which cost more than compressing a digest.
        static DEFLATE: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
    }
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let deflate = slot.get_or_insert_with(new_stream);
        deflate.reset();
        compress_with(deflate, text)
    })
}

/// A raw deflate stream with format 1's settings.
fn new_stream() -> Compress {
    Compress::new_with_window_bits(Compression::new(6), false, WINDOW_BITS)
}

/// `text` compressed with `deflate`, a stream fresh or just reset.
fn compress_with(deflate: &mut Compress, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 + 16);
    out.push(V1);
    // Setting a dictionary before any input cannot fail.
    if deflate.set_dictionary(DICTIONARY_V1.as_bytes()).is_err() {
        return stored(text);
    }
    let input = text.as_bytes();
    loop {
        out.reserve(256.max(input.len() / 4));
        let consumed = usize::try_from(deflate.total_in()).unwrap_or(input.len());
        match deflate.compress_vec(&input[consumed..], &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return out,
            Ok(_) => continue,
            // Compressing into a growing buffer cannot fail; keep the text readable anyway.
            Err(_) => return stored(text),
        }
    }
}

/// `text` kept as is (format 0), the fallback if deflate ever refused it.
fn stored(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 1);
    out.push(0);
    out.extend_from_slice(text.as_bytes());
    out
}

/// The text `stored` holds (what [`compress`] made of it, in any format version).
pub fn decompress(stored: &[u8]) -> Result<String, String> {
    match stored.split_first() {
        Some((0, plain)) => String::from_utf8(plain.to_vec()).map_err(|e| e.to_string()),
        Some((&V1, packed)) => inflate_v1(packed),
        Some((version, _)) => Err(format!("unknown disclosure text format {version}")),
        None => Err("empty disclosure text".into()),
    }
}

fn inflate_v1(packed: &[u8]) -> Result<String, String> {
    let mut inflate = Decompress::new_with_window_bits(false, WINDOW_BITS);
    inflate
        .set_dictionary(DICTIONARY_V1.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(packed.len() * 6);
    loop {
        out.reserve(4096);
        let consumed = usize::try_from(inflate.total_in()).unwrap_or(packed.len());
        let before = inflate.total_out();
        match inflate
            .decompress_vec(&packed[consumed..], &mut out, FlushDecompress::Finish)
            .map_err(|e| e.to_string())?
        {
            Status::StreamEnd => break,
            _ if inflate.total_out() == before && consumed >= packed.len() => {
                return Err("truncated disclosure text".into());
            }
            _ => continue,
        }
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_like(n: usize) -> String {
        let mut body = String::from(
            "Hello Ann Lee,\n\nHere are the assignments of Ava Lee and Ben Lee at Springfield District: what was due in the past\n\
             week and what is due in the coming week. Times are in America/New_York.\n",
        );
        for class in 0..n {
            body.push_str(&format!(
                "\nClass {class}\n  Due in the past week:\n  - Mon Nov 23, 8:00 AM  Assignment 1 (10 points)\n  - Wed Nov 25, 8:00 AM  Assignment 2 (10 points)\n"
            ));
        }
        body.push_str("\nTo stop receiving this weekly summary, open this link and confirm (invitations and\nmessages from teachers are not affected):\nhttps://pc.example/unsubscribe/AbCdEf0123456789\n");
        body
    }

    #[test]
    fn texts_come_back_exactly() {
        for text in [
            String::new(),
            "é ✓ \u{0}\r\n".to_string(),
            digest_like(14),
            "x".repeat(200_000),
        ] {
            assert_eq!(decompress(&compress(&text)).as_deref(), Ok(text.as_str()));
        }
    }

    #[test]
    fn the_reused_stream_writes_what_a_fresh_one_does() {
        let fresh = |text: &str| compress_with(&mut new_stream(), text);
        // An earlier text (and an abandoned large one) must leave nothing behind.
        let _ = compress(&"y".repeat(100_000));
        for text in [digest_like(14), digest_like(2), digest_like(14)] {
            assert_eq!(compress(&text), fresh(&text));
        }
    }

    #[test]
    fn a_digest_takes_a_fraction_of_its_text() {
        let text = digest_like(14);
        let packed = compress(&text);
        assert!(
            packed.len() * 4 < text.len(),
            "{} bytes of {}",
            packed.len(),
            text.len()
        );
    }

    #[test]
    fn unknown_or_damaged_formats_are_errors_not_panics() {
        assert!(decompress(&[]).is_err());
        assert!(decompress(&[9, 1, 2]).is_err());
        let packed = compress(&digest_like(3));
        assert!(decompress(&packed[..packed.len() / 2]).is_err());
        assert_eq!(decompress(&[0, b'h', b'i']).as_deref(), Ok("hi"));
    }
}
