//! The ground floor: the name, map and set types every stage shares, and the
//! box for the parts of a structure that few of its values have. Nothing here
//! knows a stage.

/// The maps and sets of the model, the check and the plan: in insertion order
/// (source order is output order), hashed with FxHash, rustc's hasher. Their keys
/// are short names from the user's own file, looked up many times per service:
/// SipHash's protection against flooding buys nothing here, and cost time
/// (docs/performance.md).
pub type IndexMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;
/// See [`IndexMap`].
pub type IndexSet<T> = indexmap::IndexSet<T, rustc_hash::FxBuildHasher>;

/// A name from the user's file (a service, a port, an environment variable):
/// short, copied from the syntax tree into the model and from the model into
/// each topology's plan. A `SmolStr` (rust-analyzer's) keeps up to 23 bytes
/// inline and shares longer ones: a copy is never an allocation, and a large
/// file has hundreds of thousands of them (docs/performance.md).
pub type Name = smol_str::SmolStr;

/// Parts of a large structure that few of its values have (a service's
/// volumes, autoscaler, HA...), behind one box made only when one of them is
/// set: a file of thousands of services holds thousands of definitions and
/// instances, and these parts, inline, were most of their size. Reading an
/// unset part reads the empty one; writing one makes the box.
#[derive(Debug, Clone, Default)]
pub struct Rare<T>(Option<Box<T>>);

/// What [`Rare`] holds: parts that are all empty by default.
pub trait Parts: Default + PartialEq + 'static {
    /// The parts, all empty (what an unset box reads as).
    fn empty() -> &'static Self;
}

/// Implements [`Parts`] for a type whose `Default` is its empty parts: one
/// static of them, made at the first read of an unset box.
macro_rules! rare_parts {
    ($parts:ty) => {
        impl $crate::base::Parts for $parts {
            fn empty() -> &'static $parts {
                static EMPTY: std::sync::LazyLock<$parts> =
                    std::sync::LazyLock::new(<$parts>::default);
                &EMPTY
            }
        }
    };
}
pub(crate) use rare_parts;

impl<T: Parts> Rare<T> {
    /// The parts, when any was set.
    pub fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }
}

impl<T: Parts> From<T> for Rare<T> {
    /// No box when every part is empty.
    fn from(parts: T) -> Rare<T> {
        if parts == *T::empty() {
            Rare(None)
        } else {
            Rare(Some(Box::new(parts)))
        }
    }
}

impl<T: Parts> std::ops::Deref for Rare<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(parts) => parts,
            None => T::empty(),
        }
    }
}

impl<T: Parts> std::ops::DerefMut for Rare<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: Parts> PartialEq for Rare<T> {
    /// An unset box and a box of empty parts are the same parts.
    fn eq(&self, other: &Rare<T>) -> bool {
        **self == **other
    }
}

/// `a` followed by `b`: one text made of two (a string's pieces, a value's
/// text around a reference), built inline when it is short.
pub(crate) fn concat(a: &str, b: &str) -> Name {
    let mut s = smol_str::SmolStrBuilder::new();
    s.push_str(a);
    s.push_str(b);
    s.finish()
}
