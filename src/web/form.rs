//! The one form helper: a [`Field`] knows its label, hint, value and error, and
//! `templates/web/form.html`'s `field` macro renders it the same way everywhere — a
//! `<label>` tied to the control, the hint and the error next to the field (linked with
//! `aria-describedby`, the control marked `aria-invalid`), and the page's error summary
//! ([`Form::errors`]) linking to each field. Every form also carries its session's CSRF
//! token ([`Form::csrf`]).

use crate::i18n::Locale;

/// What kind of control a field is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A one-line text box.
    Text,
    /// A whole number within a range.
    Number {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// One of a list: (value, text) pairs.
    Select(Vec<(String, String)>),
    /// Several lines of text.
    TextArea,
    /// A calendar date (`YYYY-MM-DD`; the browser's date picker).
    Date,
    /// A time of day (`HH:MM`; the browser's time picker), empty allowed.
    Time,
    /// Any number of a list, as checkboxes in a `<fieldset>` whose `<legend>` is the label:
    /// (value, text) pairs. The field's value holds the chosen values separated by spaces.
    Checkboxes(Vec<(String, String)>),
    /// A secret (a password box; its value is never sent back to the browser).
    Secret,
    /// One or more files to upload (`accept`: e.g. `.csv,.zip`).
    Files {
        /// The file types offered.
        accept: &'static str,
    },
}

/// One labelled field of a form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The form field's name (also its id, `f-<name>`).
    pub name: String,
    /// The visible label.
    pub label: String,
    /// A hint under the label (empty: none).
    pub hint: String,
    /// The control.
    pub control: Control,
    /// The current or submitted value.
    pub value: String,
    /// What is wrong with the submitted value.
    pub error: Option<String>,
    /// The language of the form's own words ("Error", the summary's title).
    pub locale: Locale,
}

impl Field {
    /// A field named `name` labelled `label` with `control`, empty.
    pub fn new(name: &str, label: &str, control: Control) -> Self {
        Self {
            name: name.to_string(),
            label: label.to_string(),
            hint: String::new(),
            control,
            value: String::new(),
            error: None,
            locale: Locale::ENGLISH,
        }
    }

    /// The field on a page in `locale` (its label, hint and error must be too).
    pub fn in_language(mut self, locale: Locale) -> Self {
        self.locale = locale;
        self
    }

    /// "Error", before the error for screen readers, in the field's language.
    pub fn error_word(&self) -> String {
        self.locale.text("form-error")
    }

    /// The field with a hint.
    pub fn hint(mut self, hint: &str) -> Self {
        self.hint = hint.to_string();
        self
    }

    /// The field holding `value`.
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    /// The control's id.
    pub fn id(&self) -> String {
        format!("f-{}", self.name)
    }

    /// The ids of the hint and the error, for `aria-describedby` (empty: none).
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() {
            ids.push(format!("f-{}-hint", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("f-{}-error", self.name));
        }
        ids.join(" ")
    }

    /// The options of a select or a checkbox group (empty for other controls).
    pub fn options(&self) -> &[(String, String)] {
        match &self.control {
            Control::Select(options) | Control::Checkboxes(options) => options,
            _ => &[],
        }
    }

    /// True for a checkbox group.
    pub fn is_checkboxes(&self) -> bool {
        matches!(self.control, Control::Checkboxes(_))
    }

    /// True when `option` is one of a checkbox group's chosen values.
    pub fn is_checked(&self, option: &str) -> bool {
        self.value.split_whitespace().any(|v| v == option)
    }

    /// The id of a checkbox group's box for `option`.
    pub fn option_id(&self, option: &str) -> String {
        let safe: String = option
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("f-{}-opt-{safe}", self.name)
    }

    /// True when `option` is the field's value.
    pub fn is_selected(&self, option: &str) -> bool {
        self.value.trim() == option
    }

    /// True for a select.
    pub fn is_select(&self) -> bool {
        matches!(self.control, Control::Select(_))
    }

    /// True for a text area.
    pub fn is_text_area(&self) -> bool {
        matches!(self.control, Control::TextArea)
    }

    /// The `type` of an `<input>`: `number`, `date`, `time`, `file`, `password` or `text`.
    pub fn input_type(&self) -> &'static str {
        match self.control {
            Control::Number { .. } => "number",
            Control::Date => "date",
            Control::Time => "time",
            Control::Files { .. } => "file",
            Control::Secret => "password",
            _ => "text",
        }
    }

    /// True when the value must not be written into the page (files, secrets).
    pub fn hides_value(&self) -> bool {
        matches!(self.control, Control::Files { .. } | Control::Secret)
    }

    /// The `accept` list of a file field.
    pub fn accept(&self) -> Option<&'static str> {
        match self.control {
            Control::Files { accept } => Some(accept),
            _ => None,
        }
    }

    /// `(min, max)` of a number field.
    pub fn range(&self) -> Option<(i64, i64)> {
        match self.control {
            Control::Number { min, max } => Some((min, max)),
            _ => None,
        }
    }
}

/// A form: its fields, its CSRF token, and where it posts.
#[derive(Debug, Clone)]
pub struct Form {
    /// The URL it posts to.
    pub action: String,
    /// The session's CSRF token (a hidden `csrf` field).
    pub csrf: String,
    /// The fields, in order.
    pub fields: Vec<Field>,
}

impl Form {
    /// The fields with an error (the page's error summary lists them).
    pub fn errors(&self) -> Vec<&Field> {
        self.fields.iter().filter(|f| f.error.is_some()).collect()
    }

    /// The error summary's title, in the language of the form's fields.
    pub fn problem_title(&self) -> String {
        let locale = self.fields.first().map_or(Locale::ENGLISH, |f| f.locale);
        locale.text("form-problem")
    }

    /// True when a field has an error.
    pub fn has_errors(&self) -> bool {
        self.fields.iter().any(|f| f.error.is_some())
    }

    /// The field named `name`.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut Field> {
        self.fields.iter_mut().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_describes_itself_by_hint_and_error() {
        let mut field = Field::new(
            "digest-hour",
            "Digest hour",
            Control::Number { min: 0, max: 23 },
        )
        .hint("0 to 23");
        assert_eq!(field.described_by(), "f-digest-hour-hint");
        field.error = Some("too big".into());
        assert_eq!(
            field.described_by(),
            "f-digest-hour-hint f-digest-hour-error"
        );
        assert_eq!(field.input_type(), "number");
    }
}
