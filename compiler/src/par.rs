//! The thread pool: independent items (topologies, output trees) mapped on
//! rayon's pool, in their order.

/// `f` of every item, on rayon's pool when there are several items and more
/// than one core, in the items' order either way. Topologies are independent:
/// planning them and generating their files use the free cores. An item whose
/// `f` panics gives its panic back in its place.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<std::thread::Result<R>> {
    use rayon::prelude::*;
    let caught = |item: &T| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)));
    if items.len() < 2 || rayon::current_num_threads() < 2 {
        return items.iter().map(caught).collect();
    }
    items.par_iter().with_max_len(1).map(caught).collect()
}

/// `parallel_map` where a panic in any item goes on in the caller.
pub fn parallel_map_or_unwind<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    parallel_map(items, f)
        .into_iter()
        .map(|result| result.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_map_keeps_order_and_gives_each_panic_back_in_its_place() {
        let items: Vec<usize> = (0..64).collect();
        let results = super::parallel_map(&items, |&i| {
            assert!(i != 7, "item seven");
            i * 2
        });
        assert_eq!(results.len(), 64);
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(v) => assert_eq!(v, i * 2),
                Err(panic) => {
                    assert_eq!(i, 7);
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    assert!(message.contains("item seven"), "{message}");
                }
            }
        }
    }
}
