//! The text screen of the verifier's V23 (`record.privacy`: no personal data in the record), one pass over
//! an entry's bytes. Its reference is `verifier._privacy._screen`, which this mirrors exactly; the verdict
//! on what it returns stays Python's (`verifier._privacy.scan_entry`), and
//! `tests/verifier/test_verifier_cli.py` feeds both the same texts. Public data only.
//!
//! In a JSON text without backslashes every quote opens or closes a string literal. For such a text with
//! an even number of quotes and no run of twelve ASCII digits outside its literals (the outside parts
//! joined, as the reference joins them), [`screen_literals`] returns the distinct literals that a screen
//! must look at: those that are empty, are not lowercase hex, or are exactly twelve digits (a hash or a
//! point, the bulk of a ballot, needs no look). Any other text gets `None`: the payload is walked.

/// The literals of `text` to look at (module docs), sorted and distinct, or `None`.
pub fn screen_literals(text: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut inside = false;
    let mut start = 0;
    let mut digits = 0; // the run of digits in the outside parts joined (a literal does not break it)
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'\\' => return None,
            b'"' => {
                if inside {
                    let lit = &text[start..i];
                    if needs_a_look(lit) {
                        out.push(lit);
                    }
                } else {
                    start = i + 1;
                }
                inside = !inside;
            }
            _ if inside => {}
            b'0'..=b'9' => {
                digits += 1;
                if digits >= 12 {
                    return None;
                }
            }
            _ => digits = 0,
        }
    }
    if inside {
        return None; // an odd number of quotes: not JSON
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

fn needs_a_look(lit: &[u8]) -> bool {
    lit.is_empty()
        || !lit.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        || (lit.len() == 12 && lit.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::screen_literals;

    fn lits(t: &str) -> Option<Vec<String>> {
        screen_literals(t.as_bytes())
            .map(|v| v.iter().map(|l| String::from_utf8(l.to_vec()).unwrap()).collect())
    }

    #[test]
    fn literals_to_look_at() {
        let got =
            lits(r#"{"k":"00ff","l":["x","x",""],"m":"123456789012","n":"12345678901","o":12345678901}"#);
        let want = ["", "123456789012", "k", "l", "m", "n", "o", "x"];
        assert_eq!(got.unwrap(), want);
        assert_eq!(lits(r#"{"ab":"cd"}"#).unwrap(), Vec::<String>::new());
        assert_eq!(lits(r#"{"住所":"つくば"}"#).unwrap(), ["つくば", "住所"]);
    }

    #[test]
    fn texts_that_are_walked() {
        assert_eq!(lits(r#"{"a":"x\"y"}"#), None); // an escape
        assert_eq!(lits(r#"{"a":"x}"#), None); // an odd number of quotes
        assert_eq!(lits(r#"{"a":123456789012}"#), None); // twelve digits outside the literals
        assert_eq!(lits(r#"[123456,"x",789012]"#), Some(vec!["x".into()])); // separators break the run
        assert_eq!(lits(r#"123456"x"789012"#), None); // not JSON, but joined as the reference joins
    }
}
