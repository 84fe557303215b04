//! The `stackc` binary: everything is in `stackc::cli`.

/// mimalloc instead of the system allocator: a compilation makes millions of
/// small, short-lived allocations (names, definitions, YAML text), and glibc's
/// malloc spent about a third of a large build in `malloc`, `free` and
/// `malloc_consolidate` (docs/performance.md). The `system-alloc` feature
/// keeps the system's, for heap profilers (`bench/heap.py`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(stackc::cli::run(std::env::args_os()));
}
