//! Parquet's RLE / bit-packing hybrid, the encoding of definition levels and dictionary
//! indices: enough of it to rewrite a data page's indices without decoding its values.
//!
//! (The `parquet` crate has a codec for it, public only under its `experimental` feature, which
//! also builds its variant type and the whole of `arrow`: a few dozen lines here cost less.)
//!
//! A run starts with a ULEB128 header: an even header is an RLE run of `header >> 1` copies of
//! one value (its `ceil(bit_width / 8)` bytes, little-endian); an odd one is `header >> 1`
//! groups of 8 values packed in `bit_width` bits each, least significant bit first. Only the
//! last group of a page may hold padding.

/// Bits needed for values from 0 to `max`.
pub fn bit_width(max: u32) -> u8 {
    (u32::BITS - max.leading_zeros()) as u8
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RleError {
    #[error("a bit width of {0} (at most 32)")]
    BitWidth(u8),
    #[error("the data ends after {got} of {want} values")]
    Truncated { got: usize, want: usize },
}

/// Appends `count` values of `bit_width` bits decoded from `data` to `out`.
pub fn decode(data: &[u8], bit_width: u8, count: usize, out: &mut Vec<u32>) -> Result<(), RleError> {
    if bit_width > 32 {
        return Err(RleError::BitWidth(bit_width));
    }
    let want = out.len() + count;
    out.reserve(count);
    let truncated = |out: &Vec<u32>| RleError::Truncated { got: out.len() + count - want, want: count };
    let value_bytes = usize::from(bit_width).div_ceil(8);
    let mut pos = 0;
    while out.len() < want {
        let header = uleb128(data, &mut pos).ok_or_else(|| truncated(out))?;
        let left = want - out.len();
        if header & 1 == 0 {
            let run = usize::try_from(header >> 1).unwrap_or(usize::MAX).min(left);
            let bytes = data.get(pos..pos + value_bytes).ok_or_else(|| truncated(out))?;
            pos += value_bytes;
            let value = bytes.iter().rev().fold(0u32, |v, &b| (v << 8) | u32::from(b));
            out.extend(std::iter::repeat_n(value, run));
        } else {
            let groups = usize::try_from(header >> 1).unwrap_or(usize::MAX);
            let bytes = groups.saturating_mul(usize::from(bit_width));
            let packed = &data[pos.min(data.len())..pos.saturating_add(bytes).min(data.len())];
            pos = pos.saturating_add(bytes);
            // A writer may end the last group early: as many whole values as its bytes hold.
            let values = groups.saturating_mul(8).min(left);
            let whole = if bit_width == 0 { values } else { values.min(packed.len() * 8 / usize::from(bit_width)) };
            unpack(packed, bit_width, whole, out);
            if whole < values {
                return Err(truncated(out));
            }
        }
    }
    Ok(())
}

fn uleb128(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn unpack(packed: &[u8], bit_width: u8, count: usize, out: &mut Vec<u32>) {
    let mask = (1u64 << bit_width) - 1;
    let (mut acc, mut bits) = (0u64, 0u8);
    let mut bytes = packed.iter();
    for _ in 0..count {
        while bits < bit_width {
            acc |= u64::from(*bytes.next().unwrap_or(&0)) << bits;
            bits += 8;
        }
        out.push((acc & mask) as u32);
        acc >>= bit_width;
        bits -= bit_width;
    }
}

/// Appends `values` encoded in `bit_width` bits to `out`: runs of 8 or more equal values as RLE
/// runs, the rest bit-packed (the last group padded with zeros). Every value must fit in
/// `bit_width` bits.
pub fn encode(values: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    debug_assert!(bit_width <= 32 && values.iter().all(|&v| bit_width == 32 || v >> bit_width == 0));
    let run_at = |i: usize| values.get(i).map_or(0, |&v| values[i..].iter().take_while(|&&w| w == v).count());
    let value_bytes = usize::from(bit_width).div_ceil(8);
    let mut i = 0;
    while i < values.len() {
        let run = run_at(i);
        if run >= 8 {
            put_uleb128((run as u64) << 1, out);
            out.extend_from_slice(&values[i].to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        // Groups of 8 until a long run starts at a group's start, or the values end.
        let start = i;
        loop {
            i += 8;
            if i >= values.len() || run_at(i) >= 8 {
                break;
            }
        }
        let groups = (i - start) / 8;
        put_uleb128(((groups as u64) << 1) | 1, out);
        pack(&values[start..i.min(values.len())], bit_width, groups * 8, out);
    }
}

fn put_uleb128(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `values` then zeros to `count`, in `bit_width` bits each.
fn pack(values: &[u32], bit_width: u8, count: usize, out: &mut Vec<u8>) {
    let (mut acc, mut bits) = (0u64, 0u8);
    for n in 0..count {
        acc |= u64::from(values.get(n).copied().unwrap_or(0)) << bits;
        bits += bit_width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[u32], width: u8) -> Vec<u32> {
        let mut bytes = Vec::new();
        encode(values, width, &mut bytes);
        let mut back = Vec::new();
        decode(&bytes, width, values.len(), &mut back).unwrap();
        back
    }

    #[test]
    fn runs_and_groups_decode_to_their_values() {
        // An RLE run of 10 threes in 2 bits: header 20, value byte 3.
        let mut out = vec![7];
        decode(&[20, 3], 2, 10, &mut out).unwrap();
        assert_eq!(out, [7, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
        // One group of 0..8 in 3 bits, the spec's example: header 3, bytes 0x88 0xC6 0xFA.
        let mut out = Vec::new();
        decode(&[3, 0x88, 0xC6, 0xFA], 3, 8, &mut out).unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4, 5, 6, 7]);
        let mut bytes = Vec::new();
        encode(&[0, 1, 2, 3, 4, 5, 6, 7], 3, &mut bytes);
        assert_eq!(bytes, [3, 0x88, 0xC6, 0xFA]);
        // Padding in the last group is not read; a width of 0 is all zeros.
        let mut out = Vec::new();
        decode(&[3, 0x88, 0xC6, 0xFA], 3, 5, &mut out).unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4]);
        let mut out = Vec::new();
        decode(&[3], 0, 6, &mut out).unwrap();
        assert_eq!(out, [0; 6]);
    }

    #[test]
    fn short_data_and_wide_values_are_errors() {
        let mut out = Vec::new();
        assert_eq!(decode(&[20], 2, 10, &mut out), Err(RleError::Truncated { got: 0, want: 10 }));
        let mut out = Vec::new();
        assert_eq!(decode(&[3, 0x88], 3, 8, &mut out), Err(RleError::Truncated { got: 2, want: 8 }));
        assert_eq!(decode(&[], 33, 1, &mut Vec::new()), Err(RleError::BitWidth(33)));
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(8), 4);
        assert_eq!(bit_width(u32::MAX), 32);
    }

    proptest! {
        #[test]
        fn what_is_encoded_decodes_to_the_same_values(
            width in 0u8..=32,
            runs in proptest::collection::vec((any::<u32>(), 1usize..40), 0..40),
        ) {
            let mask = if width == 32 { u32::MAX } else { (1u32 << width) - 1 };
            let values: Vec<u32> = runs.iter().flat_map(|&(v, n)| std::iter::repeat_n(v & mask, n)).collect();
            prop_assert_eq!(round_trip(&values, width), values);
        }
    }
}
