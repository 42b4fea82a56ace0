//! A record's JSON text read into a [`Json`] tree without serde: one pass that borrows each
//! string and key and reads integers digit by digit.
//!
//! serde_json reads a record's keys and strings one by one through its visitor, about 4,900
//! instructions for a storefront record of 240 bytes. This reader takes only text it reads into
//! exactly the tree the serde reader builds (the same members in the same order, the same
//! numbers), and gives up (`None`) on anything else: an escape, a control character in a string,
//! a number with a fraction or an exponent, `-0`, an integer beyond 64 bits, nesting past the
//! depth limit, anything that is not JSON. [`super::parse`] then reads the text with serde_json,
//! which gives the tree or says what is wrong. A property test compares the two on any JSON.

use std::borrow::Cow;

use serde_json::Number;

use super::{Json, Object};

/// The tree of `text` (one value and whitespace), or `None` where serde_json must read it.
pub(super) fn parse(text: &str, max_depth: usize) -> Option<Json<'_>> {
    let bytes = text.as_bytes();
    let mut p = Plain { text, at: 0, max_depth };
    let value = p.value(0)?;
    p.skip_whitespace();
    (p.at == bytes.len()).then_some(value)
}

/// The members of the object `text` holds (one object and whitespace) that `slot` places, each
/// put in its slot of `slots`, the last of a repeated key, as [`super::parse_object`] gives them.
/// The other members are read all the same, so that the whole text is checked, and dropped.
/// `None` where the text is not a plain object (serde_json must read it), with `slots` then
/// partly filled.
pub(super) fn object<'a>(
    text: &'a str,
    max_depth: usize,
    slot: impl Fn(&str) -> Option<usize>,
    slots: &mut [Option<Json<'a>>],
) -> Option<()> {
    let mut p = Plain { text, at: 0, max_depth };
    p.skip_whitespace();
    if p.bytes().get(p.at) != Some(&b'{') || max_depth == 0 {
        return None;
    }
    p.members(0, |key, value| {
        if let Some(i) = slot(key) {
            slots[i] = Some(value);
        }
    })?;
    p.skip_whitespace();
    (p.at == text.len()).then_some(())
}

struct Plain<'a> {
    text: &'a str,
    at: usize,
    max_depth: usize,
}

/// The length of the plain text at the start of `s`: up to its first quote, backslash or control
/// character (what ends a string, starts an escape, or is not allowed raw in one). Sixteen bytes
/// at a time by SSE2 on x86_64 and by NEON on aarch64 (each part of every target of its
/// architecture), then eight at a time ([`plain_words_len`]) for the rest, and elsewhere.
fn plain_text_len(s: &[u8]) -> usize {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let blocks = s.len() / 16 * 16;
        match special_in_blocks(&s[..blocks]) {
            Some(at) => at,
            None => blocks + plain_words_len(&s[blocks..]),
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        plain_words_len(s)
    }
}

/// The string whose opening quote is at `text[at]`, if it is plain (no escape or control
/// character before its closing quote): its text, and the position after its closing quote.
/// `None` where there is no quote at `at`, or the string is not plain or not closed. Shared by
/// the records' reader and the processor's envelope reader.
pub fn plain_string(text: &str, at: usize) -> Option<(&str, usize)> {
    let rest = text.as_bytes().get(at..)?.strip_prefix(b"\"")?;
    let len = plain_text_len(rest);
    if rest.get(len) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    // SAFETY: `start..start + len` lies between two quotes of `text`: ASCII bytes, so both ends
    // are character boundaries of the UTF-8 text, and the bytes between are UTF-8.
    let string = unsafe { text.get_unchecked(start..start + len) };
    Some((string, start + len + 1))
}

/// The position of the first special byte of `s` ([`plain_text_len`]'s), read in blocks of 16
/// bytes (a shorter block at the end is not read).
#[cfg(target_arch = "x86_64")]
fn special_in_blocks(s: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 target (the intrinsics need no other feature), and
    // each load reads the 16 bytes of a block of `s`, unaligned.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let control_max = _mm_set1_epi8(0x1f);
        for (i, block) in s.chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            // A control character is a byte the unsigned minimum with 0x1f leaves as it is.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, control_max), v);
            let special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
            let mask = _mm_movemask_epi8(special) as u32;
            if mask != 0 {
                return Some(i * 16 + mask.trailing_zeros() as usize);
            }
        }
    }
    None
}

/// The same search as the SSE2 one above, with NEON: a block's bytes that are special are 0xff
/// in `special`, narrowed to four bits each of a 64-bit word (a shift right by four of each
/// 16-bit pair), whose trailing zeros give the first.
#[cfg(target_arch = "aarch64")]
fn special_in_blocks(s: &[u8]) -> Option<usize> {
    use std::arch::aarch64::{
        vceqq_u8, vcltq_u8, vdupq_n_u8, vget_lane_u64, vld1q_u8, vorrq_u8, vreinterpret_u64_u8, vreinterpretq_u16_u8,
        vshrn_n_u16,
    };
    // SAFETY: NEON is part of every aarch64 target (the intrinsics need no other feature), and
    // each load reads the 16 bytes of a block of `s`, unaligned.
    unsafe {
        let quote = vdupq_n_u8(b'"');
        let backslash = vdupq_n_u8(b'\\');
        let space = vdupq_n_u8(0x20);
        for (i, block) in s.chunks_exact(16).enumerate() {
            let v = vld1q_u8(block.as_ptr());
            let special = vorrq_u8(vorrq_u8(vceqq_u8(v, quote), vceqq_u8(v, backslash)), vcltq_u8(v, space));
            let mask = vget_lane_u64::<0>(vreinterpret_u64_u8(vshrn_n_u16::<4>(vreinterpretq_u16_u8(special))));
            if mask != 0 {
                return Some(i * 16 + mask.trailing_zeros() as usize / 4);
            }
        }
    }
    None
}

/// [`plain_text_len`] eight bytes at a time: a byte's high bit is set in `found` where it is one
/// of those, exactly for the first such byte (later ones may be marked by a borrow, and are not
/// looked at). On x86_64 and aarch64 only a string's last few bytes come here: kept out of line
/// there, so that the callers of the 16-byte search stay small.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(never))]
fn plain_words_len(s: &[u8]) -> usize {
    const ONES: u64 = u64::MAX / 255;
    let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    let mut at = 0;
    for chunk in s.chunks_exact(8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let found = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let found = found & (ONES << 7);
        if found != 0 {
            return at + found.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at + s[at..].iter().position(|&b| special(b)).unwrap_or(s.len() - at)
}

impl<'a> Plain<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// Whether `byte` comes next (after whitespace), taken if so.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let next = self.bytes().get(self.at) == Some(&byte);
        self.at += usize::from(next);
        next
    }

    /// One value with `depth` containers around it.
    fn value(&mut self, depth: usize) -> Option<Json<'a>> {
        self.skip_whitespace();
        match *self.bytes().get(self.at)? {
            b'"' => self.string().map(|s| Json::String(Cow::Borrowed(s))),
            b'{' if depth < self.max_depth => {
                let mut members = Vec::with_capacity(16);
                self.members(depth, |key, value| members.push((Cow::Borrowed(key), value)))?;
                Some(Json::Object(Object(members)))
            }
            b'[' if depth < self.max_depth => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if !self.eat(b',') {
                            self.eat(b']').then_some(())?;
                            break;
                        }
                    }
                }
                Some(Json::Array(items))
            }
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// The members of the object at its `{`, with `depth` containers around it, each key and
    /// value given to `member` in text order.
    fn members(&mut self, depth: usize, mut member: impl FnMut(&'a str, Json<'a>)) -> Option<()> {
        self.at += 1;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.skip_whitespace();
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            member(key, self.value(depth + 1)?);
            if !self.eat(b',') {
                return self.eat(b'}').then_some(());
            }
        }
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        self.bytes()[self.at..].starts_with(word.as_bytes()).then(|| {
            self.at += word.len();
            value
        })
    }

    /// A string without escapes or control characters (at its opening quote): its text.
    fn string(&mut self) -> Option<&'a str> {
        let (text, after) = plain_string(self.text, self.at)?;
        self.at = after;
        Some(text)
    }

    /// An integer as serde_json gives it: non-negative as `u64`, negative as `i64`. A fraction,
    /// an exponent, `-0` (a float there) or anything past 64 bits is left to serde_json.
    fn integer(&mut self) -> Option<Json<'a>> {
        let rest = &self.bytes()[self.at..];
        let negative = rest[0] == b'-';
        let digits = &rest[usize::from(negative)..];
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        // One digit at least; a leading zero only alone (JSON's grammar); no fraction or exponent.
        if len == 0 || (len > 1 && digits[0] == b'0') || matches!(digits.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut magnitude: u64 = 0;
        for &d in &digits[..len] {
            magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        let number = if !negative {
            Number::from(magnitude)
        } else if magnitude == 0 || magnitude > 1 << 63 {
            return None;
        } else {
            Number::from(0i64.wrapping_sub_unsigned(magnitude))
        };
        self.at += usize::from(negative) + len;
        Some(Json::Number(number))
    }
}

#[cfg(test)]
mod tests {
    use super::{plain_string, plain_text_len, plain_words_len};
    use proptest::prelude::*;

    fn byte_by_byte(bytes: &[u8]) -> usize {
        bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(bytes.len())
    }

    proptest! {
        /// Sixteen and eight bytes at a time find what a byte-by-byte search finds, wherever the
        /// special byte is (in a block, a word or the tail) and whatever follows it.
        #[test]
        fn plain_text_len_finds_the_first_quote_backslash_or_control_character(
            bytes in proptest::collection::vec(prop_oneof![
                16 => 0x20u8..=0xff,
                1 => prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20],
            ], 0..80)
        ) {
            let expected = byte_by_byte(&bytes);
            prop_assert_eq!(plain_text_len(&bytes), expected);
            prop_assert_eq!(plain_words_len(&bytes), expected);
        }
    }

    #[test]
    fn a_plain_string_is_its_text_and_the_position_after_it() {
        let text = r#"{"key": "välue", "long": "0123456789abcdef0123456789", "e": "a\"b", "open": "x"#;
        assert_eq!(plain_string(text, 1), Some(("key", 6)));
        assert_eq!(plain_string(text, 8), Some(("välue", 16)));
        assert_eq!(plain_string(text, 26), Some(("0123456789abcdef0123456789", 54)));
        assert_eq!(plain_string(text, 0), None, "no quote at `at`");
        assert_eq!(plain_string(text, 61), None, "an escape");
        assert_eq!(plain_string(text, 77), None, "not closed");
        assert_eq!(plain_string(text, text.len()), None);
        assert_eq!(plain_string(text, text.len() + 1), None);
        assert_eq!(plain_string("\"a\tb\"", 0), None, "a control character");
        assert_eq!(plain_string(r#""""#, 0), Some(("", 2)));
    }

    #[test]
    fn each_special_byte_is_found_at_each_position_of_a_block() {
        let special: Vec<u8> = (0u8..0x20).chain([b'"', b'\\']).collect();
        for len in [15, 16, 17, 31, 32, 33] {
            for at in 0..len {
                for &b in &special {
                    // The bytes around the special one are the nearest that are not special,
                    // and the highest: a signed comparison or a borrow would mistake them.
                    let mut bytes: Vec<u8> =
                        (0..len).map(|i| [0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xff][i % 7]).collect();
                    bytes[at] = b;
                    assert_eq!(plain_text_len(&bytes), at, "{b:#04x} at {at} of {len}");
                }
            }
            let plain = vec![b'a'; len];
            assert_eq!(plain_text_len(&plain), len);
        }
    }
}
