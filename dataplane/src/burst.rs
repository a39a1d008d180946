//! [`Burst`]: a fixed-capacity, inline array of packets (or any owned value), the unit every
//! rx, process and tx step works on. It never allocates: the storage is part of the struct.

use core::fmt;
use core::mem::MaybeUninit;
use core::ops::{Deref, DerefMut};
use core::ptr;

/// The largest burst any port or ring operation handles at once (DPDK's `MAX_PKT_BURST`
/// is 32 by default and l3fwd allows up to 512).
pub const MAX_BURST: usize = 512;

/// The default burst size of rx and tx.
pub const DEFAULT_BURST: usize = 32;

/// A fixed-capacity array of up to `N` values, stored inline.
///
/// Dereferences to a slice of the values it holds. Dropping it drops them (for mbufs: returns
/// them to their pool).
///
/// # Examples
/// ```
/// use dataplane::burst::Burst;
/// let mut b: Burst<u32, 4> = Burst::new();
/// assert!(b.push(7).is_ok());
/// assert_eq!(&b[..], &[7]);
/// ```
pub struct Burst<T, const N: usize = MAX_BURST> {
    len: usize,
    items: [MaybeUninit<T>; N],
}

impl<T, const N: usize> Burst<T, N> {
    /// An empty burst.
    pub fn new() -> Self {
        Burst {
            len: 0,
            // An array of MaybeUninit needs no initialisation; `[const { .. }; N]` builds it
            // without unsafe.
            items: [const { MaybeUninit::uninit() }; N],
        }
    }

    /// The maximum number of values.
    #[inline(always)]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of values held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more values fit.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Free places.
    #[inline(always)]
    pub fn spare(&self) -> usize {
        N - self.len
    }

    /// Appends `v`, or gives it back when the burst is full.
    #[inline(always)]
    pub fn push(&mut self, v: T) -> Result<(), T> {
        // One check: `get_mut` is the capacity test and the index's bounds check at once.
        let len = self.len;
        match self.items.get_mut(len) {
            Some(slot) => {
                slot.write(v);
                self.len = len + 1;
                Ok(())
            }
            None => Err(v),
        }
    }

    /// Removes and returns the last value.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        #[allow(unsafe_code)]
        // SAFETY: index `len` was initialised (it was below the old length) and is now outside
        // the initialised prefix, so it is read exactly once.
        Some(unsafe { self.items[self.len].assume_init_read() })
    }

    /// Drops every value.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Drops the values from index `len` on.
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            drop(self.pop());
        }
    }

    /// Removes the first `n` values (all of them when `n >= len`), handing each to `f` in
    /// order, and moves the rest to the front.
    ///
    /// If `f` panics, the values handed out so far are `f`'s (each dropped exactly once, by
    /// whoever holds it) and the burst keeps the others, as `Vec::drain` does.
    pub fn drain_front(&mut self, n: usize, mut f: impl FnMut(T)) {
        self.drain_front_indexed(n, |v, _| f(v));
    }

    /// [`Burst::drain_front`] handing each value with its index.
    #[inline(always)]
    pub(crate) fn drain_front_indexed(&mut self, n: usize, mut f: impl FnMut(T, usize)) {
        /// Closes the gap of the values moved out, also when `f` unwinds.
        struct Guard<'a, T, const N: usize> {
            burst: &'a mut Burst<T, N>,
            taken: usize,
        }
        impl<T, const N: usize> Drop for Guard<'_, T, N> {
            fn drop(&mut self) {
                #[allow(unsafe_code)]
                // SAFETY: exactly the first `taken` values were moved out (`taken` counts
                // each one before it reaches `f`).
                unsafe {
                    self.burst.forget_front(self.taken)
                };
            }
        }
        let n = n.min(self.len);
        let mut g = Guard { burst: self, taken: 0 };
        while g.taken < n {
            let i = g.taken;
            debug_assert!(i < g.burst.len && g.burst.len <= N);
            #[allow(unsafe_code)]
            // SAFETY: i < n <= len <= N, so the slot exists and is initialised; it is read
            // once, counted as moved out at once, and then left outside the prefix by
            // `forget_front`.
            let v = unsafe { g.burst.items.get_unchecked(i).assume_init_read() };
            g.taken += 1;
            f(v, i);
        }
    }

    /// Moves the values at `[n, len)` to the front and shortens the burst by `n`, without
    /// dropping the first `n` values.
    ///
    /// # Safety
    /// The first `n` values (`n <= len`) must already have been moved out (read with
    /// `ptr::read`) by the caller, or they leak.
    #[allow(unsafe_code)]
    pub unsafe fn forget_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            let p = self.items.as_mut_ptr();
            // SAFETY: both ranges lie within the array; `ptr::copy` allows overlap.
            unsafe { ptr::copy(p.add(n), p, rest) };
        }
        self.len = rest;
    }

    /// Pointer to the first value.
    #[inline(always)]
    pub fn as_ptr(&self) -> *const T {
        self.items.as_ptr().cast()
    }

    /// Mutable pointer to the first value.
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.items.as_mut_ptr().cast()
    }

    /// The uninitialised tail, to be filled before [`Burst::set_len`].
    #[inline(always)]
    pub fn spare_mut(&mut self) -> &mut [MaybeUninit<T>] {
        &mut self.items[self.len..]
    }

    /// Sets the length.
    ///
    /// # Safety
    /// `len <= N`, and every value below `len` is initialised and owned by the burst.
    #[allow(unsafe_code)]
    #[inline(always)]
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= N);
        self.len = len;
    }
}

impl<T, const N: usize> Default for Burst<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Deref for Burst<T, N> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        #[allow(unsafe_code)]
        // SAFETY: the first `len` items are initialised.
        unsafe {
            core::slice::from_raw_parts(self.as_ptr(), self.len)
        }
    }
}

impl<T, const N: usize> DerefMut for Burst<T, N> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        let len = self.len;
        #[allow(unsafe_code)]
        // SAFETY: the first `len` items are initialised and we hold `&mut self`.
        unsafe {
            core::slice::from_raw_parts_mut(self.as_mut_ptr(), len)
        }
    }
}

impl<T, const N: usize> Drop for Burst<T, N> {
    fn drop(&mut self) {
        let len = self.len;
        self.len = 0;
        #[allow(unsafe_code)]
        // SAFETY: the first `len` items are initialised; len was reset first so a panic in a
        // destructor cannot cause a double drop.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.as_mut_ptr(), len))
        };
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for Burst<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T, const N: usize> Extend<T> for Burst<T, N> {
    /// Appends values until the burst is full; the rest of the iterator is not consumed.
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let mut it = iter.into_iter();
        while !self.is_full() {
            match it.next() {
                Some(v) => {
                    let _ = self.push(v);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn push_pop_full() {
        let mut b: Burst<u8, 2> = Burst::new();
        assert!(b.push(1).is_ok());
        assert!(b.push(2).is_ok());
        assert_eq!(b.push(3), Err(3));
        assert_eq!(b.pop(), Some(2));
        assert_eq!(&b[..], &[1]);
    }

    /// Counts its drops per id: dropping one twice shows as a 2.
    #[derive(Debug)]
    struct Counted(usize, std::rc::Rc<std::cell::RefCell<Vec<u32>>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.borrow_mut()[self.0] += 1;
        }
    }

    #[test]
    fn drain_front_survives_a_panicking_callback() {
        let drops = std::rc::Rc::new(std::cell::RefCell::new(vec![0u32; 6]));
        let mut b: Burst<Counted, 8> = Burst::new();
        for i in 0..6 {
            b.push(Counted(i, drops.clone())).unwrap();
        }
        let mut kept = vec![];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.drain_front(4, |c| {
                if c.0 == 2 {
                    panic!("callback fails on value 2");
                }
                kept.push(c);
            })
        }));
        assert!(r.is_err());
        // 0 and 1 went to the callback's vector, 2 was dropped by the unwinding callback, 3
        // to 5 are still in the burst, in order.
        assert_eq!(kept.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(b.iter().map(|c| c.0).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(*drops.borrow(), [0, 0, 1, 0, 0, 0]);
        drop(kept);
        drop(b);
        assert_eq!(*drops.borrow(), [1; 6], "each value dropped exactly once");
    }

    #[test]
    fn drain_front_keeps_order_and_drops_nothing_twice() {
        let tracker = Rc::new(());
        let mut b: Burst<(u32, Rc<()>), 8> = Burst::new();
        for i in 0..6 {
            b.push((i, tracker.clone())).unwrap();
        }
        let mut got = vec![];
        b.drain_front(4, |(i, _)| got.push(i));
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(b.iter().map(|x| x.0).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(Rc::strong_count(&tracker), 3);
        drop(b);
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn drain_more_than_len() {
        let mut b: Burst<u32, 4> = Burst::new();
        b.extend([1, 2, 3, 4, 5]);
        assert_eq!(b.len(), 4);
        let mut n = 0;
        b.drain_front(10, |_| n += 1);
        assert_eq!(n, 4);
        assert!(b.is_empty());
    }
}
