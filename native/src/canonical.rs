//! Canonical ledger entries (`docs/record.md`): whether a line of `entries.jsonl` is, certainly, the
//! RFC 8785 serialisation of a JSON value in the ledger's value domain, and its leaf hash. The verifier's
//! workers ask it of every line (V1: "every line is a canonical entry"), so that the reference's parse,
//! re-serialisation and comparison (`ledger.record.Entry.parse`) is left for the lines it does not accept.
//!
//! The reference is `ledger.record.canonical_json_checked`: for the ledger's values (objects with string
//! keys, arrays, strings, integers within ±(2^53 − 1), `true`, `false`, `null`; no other number) RFC 8785
//! is byte for byte Python's `json.dumps(ensure_ascii=False, separators=(",", ":"), sort_keys=True)`, with
//! object keys in code-point order, which is RFC 8785's UTF-16 order for keys in the Basic Multilingual
//! Plane. This check is **sound, not complete**: [`is_canonical`] says `true` only for a text that is
//! exactly that serialisation of the value it decodes to (so it decodes the same with any JSON parser, has
//! no duplicate key and nests at most `max_depth` levels); it says `false` for anything else and for the
//! rare canonical texts it leaves to the reference: a character outside the Basic Multilingual Plane, a
//! key with an escape, a `\u` escape of anything but a control character. `false` means "ask the
//! reference", which words the failure; `tests/native/test_native_canonical.py` holds the two together.
//! Public data only.

/// Whether `text` is certainly a canonical entry text (module docs) nesting at most `max_depth` levels
/// of arrays and objects.
pub fn is_canonical(text: &[u8], max_depth: usize) -> bool {
    // one pass for UTF-8 validity; below, the bytes of a multi-byte sequence are never ASCII
    if std::str::from_utf8(text).is_err() || text.iter().any(|&b| b >= 0xF0) {
        return false; // not UTF-8, or a character outside the BMP (its key order is the reference's)
    }
    let mut p = Parser { s: text, i: 0 };
    p.value(max_depth) && p.i == text.len()
}

/// The largest integer the ledger allows (2^53 − 1), and its digits.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
const MAX_DIGITS: usize = 16;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// One value; `depth`: how many more levels of arrays and objects may open.
    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth > 0 && self.object(depth - 1),
            Some(b'[') => depth > 0 && self.array(depth - 1),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.eat(b"true"),
            Some(b'f') => self.eat(b"false"),
            Some(b'n') => self.eat(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1; // '{'
        if self.eat(b"}") {
            return true;
        }
        let mut prev: Option<&'a [u8]> = None;
        loop {
            let Some((key, escaped)) = self.string() else {
                return false;
            };
            // keys strictly increasing by code point (UTF-8 byte order is code-point order): sorted, and no
            // key twice; a key with an escape is compared by its decoded text, which is the reference's job
            if escaped || prev.is_some_and(|p| p >= key) {
                return false;
            }
            prev = Some(key);
            if !self.eat(b":") || !self.value(depth) {
                return false;
            }
            if self.eat(b"}") {
                return true;
            }
            if !self.eat(b",") {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1; // '['
        if self.eat(b"]") {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b"]") {
                return true;
            }
            if !self.eat(b",") {
                return false;
            }
        }
    }

    /// A string literal as Python's encoder writes it: its raw bytes between the quotes and whether it
    /// holds an escape, or None. Escaped are exactly `"`, `\` and the control characters (`\b`, `\t`,
    /// `\n`, `\f`, `\r`, the others as `\u00xx` in lowercase hex); every other character is itself.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        loop {
            match *self.s.get(j)? {
                b'"' => break,
                0x00..=0x1F => return None, // a raw control character: not JSON
                b'\\' => {
                    escaped = true;
                    match *self.s.get(j + 1)? {
                        b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => j += 2,
                        b'u' => {
                            let hex = self.s.get(j + 2..j + 6)?;
                            // \u00xx for a control character that has no short form, lowercase
                            let ok = hex[0] == b'0'
                                && hex[1] == b'0'
                                && matches!(hex[2], b'0' | b'1')
                                && matches!(hex[3], b'0'..=b'9' | b'a'..=b'f')
                                && !matches!((hex[2], hex[3]), (b'0', b'8' | b'9' | b'a' | b'c' | b'd'));
                            if !ok {
                                return None;
                            }
                            j += 6;
                        }
                        _ => return None,
                    }
                }
                _ => j += 1,
            }
        }
        self.i = j + 1;
        let s: &'a [u8] = self.s;
        Some((&s[start..j], escaped))
    }

    /// An integer as Python writes it (`0`, or an optional `-` and digits without a leading zero; no
    /// `-0`), within ±(2^53 − 1); no fraction or exponent.
    fn integer(&mut self) -> bool {
        let neg = self.eat(b"-");
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        if digits.is_empty() || digits.len() > MAX_DIGITS || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return false;
        }
        if digits[0] == b'0' {
            return digits.len() == 1 && !neg;
        }
        let v = digits.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
        v <= MAX_SAFE_INTEGER
    }
}

#[cfg(test)]
mod tests {
    use super::is_canonical;

    fn yes(s: &str) {
        assert!(is_canonical(s.as_bytes(), 8), "{s} should be canonical");
    }

    fn no(s: &[u8]) {
        assert!(
            !is_canonical(s, 8),
            "{} should not be accepted",
            String::from_utf8_lossy(s)
        );
    }

    #[test]
    fn canonical_texts() {
        yes(r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#);
        yes(r#"{}"#);
        yes(r#"[]"#);
        yes(r#"{"a":-9007199254740991,"b":9007199254740991,"c":0}"#);
        yes(r#"{"a":"\"\\\b\t\n\f\r\u0000\u001f","b":"つくば市 é \u007f"}"#
            .replace("\\u007f", "\u{7f}")
            .as_str());
        yes(r#"{"A":1,"B":2,"_":3,"a":4,"é":5,"つ":6}"#);
    }

    #[test]
    fn refused_or_left_to_the_reference() {
        for s in [
            &br#"{"b":1,"a":2}"#[..], // unsorted
            br#"{"a":1,"a":1}"#,      // a key twice
            br#"{"a":1 }"#,           // whitespace
            br#" {"a":1}"#,
            br#"{"a":1}x"#,  // trailing bytes
            br#"{"a":1.0}"#, // a float
            br#"{"a":1e3}"#,
            br#"{"a":-0}"#, // not Python's text of 0
            br#"{"a":01}"#,
            br#"{"a":9007199254740992}"#, // outside the safe range
            br#"{"a":-9007199254740992}"#,
            br#"{"a":"\u0041"}"#, // an escape Python does not write
            br#"{"a":"\u001F"}"#, // uppercase hex
            br#"{"a":"\u0008"}"#, // has a short form
            br#"{"a":"\/"}"#,
            br#"{"\n":1}"#,                     // a key with an escape: the reference's
            b"{\"a\":\"\x01\"}",                // a raw control character
            b"{\"a\":\"\xff\"}",                // not UTF-8
            "{\"a\":\"\u{1F600}\"}".as_bytes(), // outside the BMP: the reference's
            br#"{"a":NaN}"#,
            br#"{"a":tru}"#,
            br#"{"a":1,}"#,
            br#"{"a"}"#,
            br#"{"a":"x"#,
            br#""#,
        ] {
            no(s);
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(is_canonical(deep(8).as_bytes(), 8));
        assert!(!is_canonical(deep(9).as_bytes(), 8));
        assert!(!is_canonical(deep(100_000).as_bytes(), 64)); // refused at the bound, no deep recursion
    }
}
