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

/// A part of a large structure that few of its values have (a service's
/// storage, its replication, its scaling...), behind a box made only when
/// the part is set: a file of thousands of services holds thousands of
/// definitions and instances, and these parts, inline, were most of their
/// size. Reading an unset part reads the empty one; writing makes the box.
#[derive(Debug, Clone, Default)]
pub struct Part<T>(Option<Box<T>>);

/// What a [`Part`] holds: a type whose `Default` is empty.
pub trait EmptyPart: Default + PartialEq + 'static {
    /// The empty value (what an unset part reads as).
    fn empty() -> &'static Self;
}

/// Implements [`EmptyPart`] for a type whose `Default` is empty: one static
/// of it, made at the first read of an unset part.
macro_rules! empty_part {
    ($($part:ty),* $(,)?) => {
        $(impl $crate::base::EmptyPart for $part {
            fn empty() -> &'static $part {
                static EMPTY: std::sync::LazyLock<$part> =
                    std::sync::LazyLock::new(<$part>::default);
                &EMPTY
            }
        })*
    };
}
pub(crate) use empty_part;

impl<T: EmptyPart> Part<T> {
    /// The part, when it was set.
    pub fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }
}

impl<T: EmptyPart> From<T> for Part<T> {
    /// No box for an empty part.
    fn from(part: T) -> Part<T> {
        if part == *T::empty() {
            Part(None)
        } else {
            Part(Some(Box::new(part)))
        }
    }
}

impl<T: EmptyPart> std::ops::Deref for Part<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(part) => part,
            None => T::empty(),
        }
    }
}

impl<T: EmptyPart> std::ops::DerefMut for Part<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: EmptyPart> PartialEq for Part<T> {
    /// An unset part and an empty one are the same.
    fn eq(&self, other: &Part<T>) -> bool {
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
