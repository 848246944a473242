//! Logical partition ids and the table that names a partition by the LPID of the CPU that
//! took the exit.
//!
//! The exit path finds the calling partition from LPIDR (read with `mfspr` in `arch/`, or
//! from the vCPU it entered), never from anything the guest can write: a register, a word in
//! guest memory, or a per-CPU field the guest could reach. LPID 0 is the hypervisor's own
//! (ISA 2.07B: LPIDR = 0 while the hypervisor runs with translation of its own); POWER8
//! implements a 12-bit LPIDR.
//!
//! The lookup is an array index: no allocation and no lock of its own on the hcall path (the
//! entry type `T` carries the partition's lock, e.g. `spin::Mutex<Partition>`).
//!
//! Resources: POWER ISA 2.07B Book III-S 2.5 (LPIDR); Linux arch/powerpc/kvm/book3s_hv.c
//! (kvmppc_alloc_lpid: LPID 0 is the host's).

use alloc::vec::Vec;

/// A logical partition id that names a guest: 1..=[`Lpid::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lpid(u32);

impl Lpid {
    /// The largest LPID POWER8's 12-bit LPIDR holds.
    pub const MAX: u32 = 0xfff;

    /// `id` as a guest LPID, or `None` for 0 (the hypervisor) and values above [`Lpid::MAX`].
    pub const fn new(id: u32) -> Option<Self> {
        if id == 0 || id > Self::MAX {
            None
        } else {
            Some(Lpid(id))
        }
    }

    /// The value for LPIDR and for the RS operand of `tlbie`.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// Why a partition could not be added to an [`LpidTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpidTableError {
    /// The LPID is beyond the table's capacity.
    OutOfRange,
    /// Another partition holds the LPID.
    InUse,
}

/// Partitions by LPID, with room for LPIDs `1..=capacity`.
#[derive(Debug)]
pub struct LpidTable<T> {
    slots: Vec<Option<T>>,
}

impl<T> LpidTable<T> {
    /// A table for LPIDs `1..=capacity` (clamped to [`Lpid::MAX`]); allocates once, here.
    pub fn new(capacity: u32) -> Self {
        let capacity = capacity.min(Lpid::MAX) as usize;
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        LpidTable { slots }
    }

    /// Adds `partition` under `lpid`.
    pub fn insert(&mut self, lpid: Lpid, partition: T) -> Result<(), LpidTableError> {
        let slot = self
            .slots
            .get_mut(lpid.get() as usize - 1)
            .ok_or(LpidTableError::OutOfRange)?;
        if slot.is_some() {
            return Err(LpidTableError::InUse);
        }
        *slot = Some(partition);
        Ok(())
    }

    /// Removes and returns the partition under `lpid`.
    pub fn remove(&mut self, lpid: Lpid) -> Option<T> {
        self.slots.get_mut(lpid.get() as usize - 1)?.take()
    }

    /// The partition whose LPID is the raw LPIDR value `lpidr`; `None` for 0 (a hypercall
    /// from the hypervisor itself), an LPID beyond the table, or one with no partition.
    pub fn get(&self, lpidr: u64) -> Option<&T> {
        let index = usize::try_from(lpidr).ok()?.checked_sub(1)?;
        self.slots.get(index)?.as_ref()
    }

    /// Every partition with its LPID.
    pub fn iter(&self) -> impl Iterator<Item = (Lpid, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| Some((Lpid(i as u32 + 1), slot.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpid_zero_and_past_twelve_bits_are_not_guests() {
        assert_eq!(Lpid::new(0), None);
        assert_eq!(Lpid::new(0x1000), None);
        assert_eq!(Lpid::new(0xfff).map(Lpid::get), Some(0xfff));
    }

    #[test]
    fn table_finds_by_lpidr_and_never_by_a_bad_value() {
        let mut table = LpidTable::new(4);
        table.insert(Lpid::new(1).unwrap(), "a").unwrap();
        table.insert(Lpid::new(4).unwrap(), "d").unwrap();
        assert_eq!(
            table.insert(Lpid::new(4).unwrap(), "x"),
            Err(LpidTableError::InUse)
        );
        assert_eq!(
            table.insert(Lpid::new(5).unwrap(), "x"),
            Err(LpidTableError::OutOfRange)
        );
        assert_eq!(table.get(1), Some(&"a"));
        assert_eq!(table.get(4), Some(&"d"));
        for bad in [0u64, 2, 5, 0xfff, 1 << 32, u64::MAX] {
            assert_eq!(table.get(bad), None, "lpidr {bad:#x}");
        }
        assert_eq!(table.iter().count(), 2);
        assert_eq!(table.remove(Lpid::new(1).unwrap()), Some("a"));
        assert_eq!(table.get(1), None);
    }
}
