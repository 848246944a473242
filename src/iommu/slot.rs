//! A published-object slot: the lock-free way a hypercall finds a DMA window while setup code
//! may create or remove it on another CPU.
//!
//! A reader first looks at the pointer and gives up if it is null; otherwise it announces
//! itself (`users += 1`), loads the pointer again, and backs out (`users -= 1`) if that load
//! is null. A remover swaps the pointer to null, then waits until `users` is 0 before freeing
//! the object. Readers never block and never allocate; only removal, which is setup work,
//! waits.
//!
//! Safety (no reader holds a freed object). All operations are sequentially consistent. A
//! reader that keeps the object loaded it, in its second load, before the remover's swap; its
//! announcement comes before that load, so before the swap, so before the remover's reads of
//! `users`: the remover sees the announcement and waits until the reader drops its hold
//! (Dekker's argument). Every other reader loads null and never dereferences anything.
//!
//! Bounded removal. The look before the announcement is what bounds the wait (without it, a
//! stream of readers on other CPUs, each announcing before the previous one backs out, keeps
//! `users` above 0 for ever: tests/slot_retire.rs shows 200 such readers in a row holding up a
//! remover). With it, a reader whose first load comes after the swap returns `None` without
//! touching `users`. So after the swap the only readers that can raise `users` are those whose
//! first load came before the swap: at most one per CPU (a hypercall holds its CPU, and it
//! makes one acquire at a time), each raising it once. Each of them either backs out at once
//! (its second load is null) or was already holding the object before the swap and releases it
//! when its hypercall returns. After the swap `users` therefore rises at most once per CPU
//! and then only falls: the remover waits for at most one hypercall's worth of work per CPU,
//! whatever other CPUs do. A slot published again after the removal is a new publication:
//! readers of it are not the removal's business (the remover has returned by then).
//! This is the IOMMU's second unsafe leaf (the first is `ram`): raw-pointer ownership only.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// The points where a reader of a [`Slot`] may be held up, so that a host test can interleave
/// readers and a remover step by step instead of hoping the scheduler does. Production slots
/// use [`NoPause`], whose calls compile to nothing.
pub trait ReaderSteps {
    /// The reader has seen an object published and is about to announce itself.
    fn before_announce(&self) {}
    /// The reader has announced itself and is about to load the pointer again.
    fn after_announce(&self) {}
}

/// Readers that never pause: the production slot.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPause;

impl ReaderSteps for NoPause {}

/// A slot holding at most one boxed `T`.
pub struct Slot<T, S: ReaderSteps = NoPause> {
    object: AtomicPtr<T>,
    users: AtomicU32,
    steps: S,
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
        Self::with_steps(NoPause)
    }
}

impl<T, S: ReaderSteps> Slot<T, S> {
    /// An empty slot whose readers go through `steps` (tests).
    pub const fn with_steps(steps: S) -> Self {
        Slot {
            object: AtomicPtr::new(core::ptr::null_mut()),
            users: AtomicU32::new(0),
            steps,
        }
    }

    /// The reader steps (tests drive them).
    pub fn steps(&self) -> &S {
        &self.steps
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
        // Look before announcing: once the slot is unpublished no new reader touches the
        // count, so a remover waits only for readers that were already on their way in.
        if self.object.load(Ordering::SeqCst).is_null() {
            return None;
        }
        self.steps.before_announce();
        self.users.fetch_add(1, Ordering::SeqCst);
        self.steps.after_announce();
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

impl<T, S: ReaderSteps> Drop for Slot<T, S> {
    fn drop(&mut self) {
        drop(self.retire());
    }
}

// SAFETY: the slot hands out `&T` to readers on any CPU and moves the `Box<T>` to whichever
// CPU retires it, which is exactly what `T: Send + Sync` allows.
unsafe impl<T: Send + Sync, S: ReaderSteps + Sync> Sync for Slot<T, S> {}
// SAFETY: as above: moving the slot moves ownership of at most one `Box<T>`.
unsafe impl<T: Send + Sync, S: ReaderSteps + Send> Send for Slot<T, S> {}
