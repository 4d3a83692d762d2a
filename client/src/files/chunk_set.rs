//! Which chunks of a file a transfer has: one bit per chunk, kept in the
//! home so an interrupted transfer resumes where it stopped.

/// A set of chunk indexes below `len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSet {
    bits: Vec<u8>,
    len: u32,
}

impl ChunkSet {
    /// No chunk of `len`.
    pub fn empty(len: u32) -> Self {
        Self {
            bits: vec![0; (len as usize).div_ceil(8)],
            len,
        }
    }

    /// Reads [`ChunkSet::to_bytes`]'s form for a file of `len` chunks; a
    /// blob of the wrong length (a damaged row) reads as no chunk, so the
    /// transfer redoes everything rather than trusting it.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Self {
        let mut set = Self::empty(len);
        if bytes.len() == set.bits.len() {
            set.bits.copy_from_slice(bytes);
            // Bits past `len` mean nothing.
            for i in len..u32::try_from(set.bits.len() * 8).unwrap_or(u32::MAX) {
                set.bits[(i / 8) as usize] &= !(1 << (i % 8));
            }
        }
        set
    }

    /// The stored form.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// How many chunks the file has.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the file has no chunk (never: an empty file has one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether chunk `i` is in the set.
    pub fn contains(&self, i: u32) -> bool {
        i < self.len && self.bits[(i / 8) as usize] & (1 << (i % 8)) != 0
    }

    /// Adds chunk `i` (ignored past the end).
    pub fn insert(&mut self, i: u32) {
        if i < self.len {
            self.bits[(i / 8) as usize] |= 1 << (i % 8);
        }
    }

    /// Removes chunk `i`.
    pub fn remove(&mut self, i: u32) {
        if i < self.len {
            self.bits[(i / 8) as usize] &= !(1 << (i % 8));
        }
    }

    /// How many chunks are in the set.
    pub fn count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every chunk is in the set.
    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }

    /// The chunks not in the set, in order.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| !self.contains(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_go_in_and_out_and_survive_storage() {
        let mut set = ChunkSet::empty(11);
        assert_eq!(set.to_bytes().len(), 2);
        for i in [0, 7, 8, 10, 11, 400] {
            set.insert(i);
        }
        assert_eq!(set.count(), 4);
        assert!(set.contains(10) && !set.contains(11) && !set.contains(9));
        assert_eq!(set.missing().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 9]);
        let back = ChunkSet::from_bytes(set.to_bytes(), 11);
        assert_eq!(back, set);
        set.remove(7);
        assert!(!set.contains(7));
        for i in 0..11 {
            set.insert(i);
        }
        assert!(set.is_full());
    }

    #[test]
    fn a_damaged_blob_means_nothing_is_held() {
        assert_eq!(ChunkSet::from_bytes(&[0xff; 3], 11).count(), 0);
        // Stray bits past the end are dropped.
        assert_eq!(ChunkSet::from_bytes(&[0xff, 0xff], 11).count(), 11);
    }
}
