//! Phone numbers as the customer lookup compares them: E.164 (`+81312345678`), whatever way
//! the caller's network or the person who typed the customer record wrote them (`03-1234-5678`,
//! `(03) 1234-5678`, full-width digits, `+81 3-1234-5678`). National numbers are read in the
//! center's region, Japan unless configured otherwise. Parsing is libphonenumber's rules, via
//! the `phonenumber` crate.

use phonenumber::Mode;
use phonenumber::country::Id;

/// The number in E.164, or `None` if it is not a phone number.
pub fn normalize(text: &str, region: Id) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || !text.chars().any(|character| character.is_numeric()) {
        return None;
    }
    let number = phonenumber::parse(Some(region), half_width(text)).ok()?;
    Some(number.format().mode(Mode::E164).to_string())
}

/// Full-width digits and the punctuation typed with them (an IME's `０３－１２３４`) as ASCII.
fn half_width(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            '０'..='９' => {
                char::from_u32(u32::from(character) - u32::from('０') + u32::from('0'))
                    .unwrap_or(character)
            }
            '－' | 'ー' | '‐' | '−' | '―' => '-',
            '＋' => '+',
            '（' => '(',
            '）' => ')',
            '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

/// The region named by its ISO 3166 code (`JP`, `US`), for the configuration.
pub fn region(code: &str) -> Option<Id> {
    code.trim().to_ascii_uppercase().parse().ok()
}

/// The last four digits, for finding candidate records with SQL before comparing them here.
pub fn last_digits(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_ways_of_writing_a_number_meet_in_e164() {
        let jp = region("jp").unwrap();
        for written in [
            "03-1234-5678",
            "(03) 1234-5678",
            "0312345678",
            "+81 3-1234-5678",
            "+81312345678",
            "０３－１２３４－５６７８",
        ] {
            assert_eq!(
                normalize(written, jp).as_deref(),
                Some("+81312345678"),
                "{written}"
            );
        }
        assert_eq!(
            normalize("090-1234-5678", jp).as_deref(),
            Some("+819012345678")
        );
        assert_eq!(
            normalize("+1 415 555 2671", jp).as_deref(),
            Some("+14155552671")
        );
        assert_eq!(normalize("hanako.sato@example.jp", jp), None);
        assert_eq!(normalize("", jp), None);
        assert_eq!(last_digits("+81312345678"), "5678");
        assert!(region("XX").is_none());
    }
}
