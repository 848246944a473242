//! The std side of the hostile-caller fuzz (`tcefw::model::fuzz`), shared by the CI-sized
//! test (`tests/hcall_fuzz.rs`) and the million-call run (`benches/fuzz_hcall.rs`): a counting
//! global allocator, so rejected calls can be checked for heap changes, and panic catching.

use std::panic::{catch_unwind, AssertUnwindSafe};
use tcefw::hcall::HcallReturn;
use tcefw::model::fuzz::FuzzHooks;
use tcefw::model::CountingAlloc;

#[global_allocator]
static HEAP: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// Catches panics (counted as crashes) and reads the process heap.
pub struct Hooks;

impl FuzzHooks for Hooks {
    fn guard(&self, call: &mut dyn FnMut() -> HcallReturn) -> Option<HcallReturn> {
        catch_unwind(AssertUnwindSafe(call)).ok()
    }
    fn heap_used(&self) -> Option<u64> {
        Some(HEAP.used())
    }
}
