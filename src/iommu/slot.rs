//! A published-object slot: the lock-free way a hypercall finds a DMA window while setup code
//! may create or remove it on another CPU.
//!
//! A reader announces itself (`users += 1`), then loads the pointer; a remover swaps the
//! pointer to null, then waits until `users` is 0 before freeing the object. With sequentially
//! consistent operations either the reader sees null, or the remover sees the reader's
//! announcement and waits for it (Dekker's argument), so no reader ever holds a freed object.
//! Readers never block and never allocate; only removal, which is setup work, waits.
//! This is the IOMMU's second unsafe leaf (the first is `ram`): raw-pointer ownership only.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// A slot holding at most one boxed `T`.
pub struct Slot<T> {
    object: AtomicPtr<T>,
    users: AtomicU32,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::empty()
    }
}

/// A reader's hold on the object of a [`Slot`]; the object cannot be freed while it lives.
pub struct SlotRef<'s, T> {
    users: &'s AtomicU32,
    object: &'s T,
}

impl<T> core::ops::Deref for SlotRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.object
    }
}

impl<T> Drop for SlotRef<'_, T> {
    fn drop(&mut self) {
        self.users.fetch_sub(1, Ordering::Release);
    }
}

impl<T> Slot<T> {
    /// A slot with nothing in it.
    pub const fn empty() -> Self {
        Slot {
            object: AtomicPtr::new(core::ptr::null_mut()),
            users: AtomicU32::new(0),
        }
    }

    /// True when nothing is published.
    pub fn is_empty(&self) -> bool {
        self.object.load(Ordering::SeqCst).is_null()
    }

    /// Publishes `object` if the slot is empty; gives it back otherwise.
    pub fn publish(&self, object: Box<T>) -> Result<(), Box<T>> {
        let raw = Box::into_raw(object);
        match self.object.compare_exchange(
            core::ptr::null_mut(),
            raw,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => Ok(()),
            // SAFETY: `raw` came from `Box::into_raw` just above and was not published, so
            // this is its only owner.
            Err(_) => Err(unsafe { Box::from_raw(raw) }),
        }
    }

    /// A hold on the published object, or `None` when the slot is empty.
    pub fn acquire(&self) -> Option<SlotRef<'_, T>> {
        self.users.fetch_add(1, Ordering::SeqCst);
        let raw = self.object.load(Ordering::SeqCst);
        if raw.is_null() {
            self.users.fetch_sub(1, Ordering::Release);
            return None;
        }
        // SAFETY: `raw` was published from a Box and is freed only by `retire`, which first
        // unpublishes it and then waits until `users` is 0; our announcement above precedes
        // our load in the SeqCst order, so `retire` waits for us until the `SlotRef` drops.
        let object = unsafe { &*raw };
        Some(SlotRef {
            users: &self.users,
            object,
        })
    }

    /// Unpublishes the object, waits until no reader holds it, and hands it back.
    pub fn retire(&self) -> Option<Box<T>> {
        let raw = self.object.swap(core::ptr::null_mut(), Ordering::SeqCst);
        if raw.is_null() {
            return None;
        }
        while self.users.load(Ordering::SeqCst) != 0 {
            core::hint::spin_loop();
        }
        // SAFETY: `raw` came from `Box::into_raw` in `publish`; it is unpublished, so no new
        // reader can obtain it, and every earlier reader has dropped its `SlotRef`.
        Some(unsafe { Box::from_raw(raw) })
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        drop(self.retire());
    }
}

// SAFETY: the slot hands out `&T` to readers on any CPU and moves the `Box<T>` to whichever
// CPU retires it, which is exactly what `T: Send + Sync` allows.
unsafe impl<T: Send + Sync> Sync for Slot<T> {}
// SAFETY: as above: moving the slot moves ownership of at most one `Box<T>`.
unsafe impl<T: Send + Sync> Send for Slot<T> {}
