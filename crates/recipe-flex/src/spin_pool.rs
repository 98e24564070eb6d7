//! The threads that the kernels split their work across: the calling thread
//! and one resident helper per other core of rayon's pool, which *spins*
//! (yielding its core) for a while after each job before it sleeps.
//!
//! Why not rayon alone: a step of the lecture's deep sigmoid net (case B)
//! splits about 60 times (a product per layer and direction, the
//! derivative loops, the optimizer), with a few tens of microseconds of
//! serial work between splits; rayon's workers go to sleep in between, and
//! waking them (a futex, a switch) was 12% of the step in `perf`, time in
//! which the caller runs the other half alone. OpenMP's threads, PyTorch's,
//! spin instead. Here a helper yields its core (`sched_yield`) while it
//! waits, so a thread of rayon's pool that Flex's own operations wake still
//! gets the core at once.
//!
//! Spinning threads have a failure of their own: beside another busy
//! process, a helper waits for its core for a scheduler's time slice
//! (milliseconds) and the caller waits for the helper. On a 2-core machine
//! with one other busy process that made case B's training 16 to 20 times
//! slower (PyTorch's OpenMP threads, measured the same way: about 50
//! times). So a part that its helper has not started when the caller has
//! finished its own is taken back and run by the caller: a split then
//! costs at worst what one thread does.
//!
//! The pool serves one caller at a time; another thread that splits work
//! meanwhile (tests run in parallel) gets rayon's pool, as does a split into
//! more parts than there are threads.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// How long a helper waits for its next job before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

const IDLE: u8 = 0;
/// A job is posted and nobody has started it: the helper may take it
/// (to RUNNING) or the caller take it back (to IDLE) and run it itself.
const READY: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

/// The job of one split: called with the index of the part to run.
type Job<'a> = dyn Fn(usize) + Sync + 'a;

/// One helper thread and its mailbox.
struct Helper {
    state: AtomicU8,
    /// The job and the part to run; written by the caller before `READY`,
    /// read by the helper after it takes the job (`READY` to `RUNNING`).
    job: UnsafeCell<Option<(&'static Job<'static>, usize)>>,
    panicked: AtomicBool,
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

// SAFETY: `job` is written only by the one caller that holds the pool
// (`Pool::busy`) while the state is IDLE, and read only by the helper
// between RUNNING and DONE; the state's release/acquire orders the two.
unsafe impl Sync for Helper {}

struct Pool {
    helpers: Vec<&'static Helper>,
    busy: AtomicBool,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        // Rayon's global pool's size, also when the first split happens on
        // a thread of a pool of another size (a test's, say).
        let threads = thread::spawn(rayon::current_num_threads)
            .join()
            .unwrap_or(1);
        let helpers = (1..threads)
            .map(|index| {
                let helper: &'static Helper = Box::leak(Box::new(Helper {
                    state: AtomicU8::new(IDLE),
                    job: UnsafeCell::new(None),
                    panicked: AtomicBool::new(false),
                    sleeping: AtomicBool::new(false),
                    thread: OnceLock::new(),
                }));
                let spawned = thread::Builder::new()
                    .name(format!("recipe-flex-{index}"))
                    .spawn(move || serve(helper));
                spawned.ok().map(|handle| {
                    let _ = helper.thread.set(handle.thread().clone());
                    helper
                })
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Pool {
            helpers,
            busy: AtomicBool::new(false),
        }
    })
}

/// A helper's life: wait for a job (spinning, then asleep), run it, report.
fn serve(helper: &'static Helper) {
    loop {
        wait_for_job(helper);
        // SAFETY: this thread moved the state from READY to RUNNING
        // (acquire): the caller wrote the job, can no longer take it back,
        // and waits for DONE before it lets the job's borrows go.
        let (job, part) = unsafe { (*helper.job.get()).expect("a job comes with READY") };
        if catch_unwind(AssertUnwindSafe(|| job(part))).is_err() {
            helper.panicked.store(true, Ordering::Relaxed);
        }
        helper.state.store(DONE, Ordering::Release);
    }
}

/// Returns once this helper has taken a posted job (READY to RUNNING).
fn wait_for_job(helper: &Helper) {
    let mut since = Instant::now();
    while helper
        .state
        .compare_exchange(READY, RUNNING, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        if since.elapsed() < SPIN {
            thread::yield_now();
            continue;
        }
        // Both sides use SeqCst: either the caller sees `sleeping` and
        // unparks, or this thread sees READY and does not park (an unpark
        // before the park makes the park return at once).
        helper.sleeping.store(true, Ordering::SeqCst);
        if helper.state.load(Ordering::SeqCst) != READY {
            thread::park();
        }
        helper.sleeping.store(false, Ordering::SeqCst);
        since = Instant::now();
    }
}

/// Runs `f` on every item, each item on its own thread (the caller's the
/// first): the pool's helpers when it is free and has a thread per item,
/// rayon's pool otherwise.
pub(crate) fn for_each<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync) {
    if let Err(items) = for_each_at_once(items, &f) {
        items.into_par_iter().for_each(&f);
    }
}

/// Runs `f` on every item, each item on its own thread (the caller's the
/// first) or, where a helper is late to start its item, on the caller
/// after its own, in the order of the items; or hands the items back
/// untouched when the pool is held by another caller or has fewer threads
/// than items. For parts that wait for parts before them (a pipeline),
/// which rayon's pool could run in another order on one thread.
pub(crate) fn for_each_at_once<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync) -> Result<(), Vec<T>> {
    if items.len() <= 1 {
        items.into_iter().for_each(f);
        return Ok(());
    }
    let pool = pool();
    if items.len() > pool.helpers.len() + 1 {
        return Err(items);
    }
    let free = pool
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_ok();
    if !free {
        return Err(items);
    }
    let _free = FreeOnDrop(&pool.busy);
    let slots: Vec<Slot<T>> = items
        .into_iter()
        .map(|item| Slot(UnsafeCell::new(Some(item))))
        .collect();
    let job = |part: usize| {
        // SAFETY: each part is run once, by one thread.
        if let Some(item) = unsafe { (*slots[part].0.get()).take() } {
            f(item);
        }
    };
    run_split(&pool.helpers[..slots.len() - 1], &job);
    Ok(())
}

/// How many threads [`for_each_at_once`] can run at once.
pub(crate) fn threads() -> usize {
    pool().helpers.len() + 1
}

/// Runs `job(0)` here and `job(i + 1)` on `helpers[i]` (or here, after
/// `job(0)`, when `helpers[i]` has not started it by then), and returns
/// when all are done (also when one panics: the panic goes on from here,
/// after).
fn run_split(helpers: &[&'static Helper], job: &Job<'_>) {
    // SAFETY: the helpers use the job only between RUNNING and DONE, and
    // `Joined` takes back every job not started and waits for every DONE
    // before this function returns or unwinds, so the borrow outlives
    // every use.
    let job: &'static Job<'static> =
        unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(job) };
    for (index, helper) in helpers.iter().enumerate() {
        // A flag left by a split whose caller panicked too.
        helper.panicked.store(false, Ordering::Relaxed);
        // SAFETY: the helper is IDLE (every split waits for its DONEs and
        // resets them) and this caller holds the pool.
        unsafe { *helper.job.get() = Some((job, index + 1)) };
        helper.state.store(READY, Ordering::SeqCst);
        if helper.sleeping.load(Ordering::SeqCst)
            && let Some(thread) = helper.thread.get()
        {
            thread.unpark();
        }
    }
    let joined = Joined(helpers);
    job(0);
    // A helper that has not started its part by now is late: another
    // process holds its core (or it is waking from sleep). Waiting for it
    // made case B's training 16 to 20 times slower on a 2-core machine
    // beside one busy process (BENCHMARKS.md); the part runs here
    // instead, and the split costs at worst what one thread does.
    for (index, helper) in helpers.iter().enumerate() {
        if helper
            .state
            .compare_exchange(READY, IDLE, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            job(index + 1);
        }
    }
    drop(joined);
    if helpers
        .iter()
        .any(|h| h.panicked.swap(false, Ordering::Relaxed))
    {
        resume_unwind(Box::new("a part of a recipe-flex kernel panicked"));
    }
}

/// Waits for the helpers' DONE and sets them IDLE again, when dropped.
struct Joined<'a>(&'a [&'static Helper]);

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        for helper in self.0 {
            // A part nobody started is taken back (on the way out of a
            // panic it is not run); one that a helper started is waited for.
            let _ =
                helper
                    .state
                    .compare_exchange(READY, IDLE, Ordering::Relaxed, Ordering::Relaxed);
            let mut backoff = Backoff::default();
            while helper.state.load(Ordering::Acquire) == RUNNING {
                backoff.wait();
            }
            // SAFETY: IDLE (taken back) or DONE: the helper no longer reads
            // the job.
            unsafe { *helper.job.get() = None };
            helper.state.store(IDLE, Ordering::Relaxed);
        }
    }
}

/// How a thread waits for another that is running: a few thousand spins
/// (the other finishes within microseconds), then yielding its core at
/// every try (the other has lost its core, or the machine has fewer cores
/// than threads: let it run).
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    spins: u32,
}

impl Backoff {
    /// One wait between two looks at what is waited for.
    pub(crate) fn wait(&mut self) {
        if self.spins < 1 << 12 {
            self.spins += 1;
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Frees the pool for the next caller, when dropped.
struct FreeOnDrop<'a>(&'a AtomicBool);

impl Drop for FreeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// An item taken by the one thread that runs its part.
struct Slot<T>(UnsafeCell<Option<T>>);

// SAFETY: each slot is taken by exactly one thread (its part's).
unsafe impl<T: Send> Sync for Slot<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_item_runs_once_whoever_runs_it() {
        for round in 0..200 {
            let seen: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
            let parts = 1 + round % 4;
            for_each((0..parts).collect(), |i: usize| {
                seen[i].fetch_add(1, Ordering::Relaxed);
            });
            for (i, count) in seen.iter().enumerate() {
                let want = usize::from(i < parts);
                assert_eq!(
                    count.load(Ordering::Relaxed),
                    want,
                    "round {round}, item {i}"
                );
            }
            if round % 50 == 0 {
                // Long enough for the helpers to fall asleep.
                thread::sleep(SPIN * 3);
            }
        }
    }

    #[test]
    fn splits_from_several_threads_at_once_all_finish() {
        let total = AtomicUsize::new(0);
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        for_each(vec![1usize, 2], |n| {
                            total.fetch_add(n, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 100 * 3);
    }

    /// A helper that never starts its part (its thread lost its core, or
    /// here: it has no thread): the caller runs the part itself after its
    /// own, and the helper's mailbox is left idle and empty.
    #[test]
    fn a_part_whose_helper_is_late_runs_on_the_caller() {
        let late: &'static Helper = Box::leak(Box::new(Helper {
            state: AtomicU8::new(IDLE),
            job: UnsafeCell::new(None),
            panicked: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            thread: OnceLock::new(),
        }));
        let (sender, receiver) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let caller = thread::current().id();
            let ran: Vec<std::sync::Mutex<Option<thread::ThreadId>>> =
                (0..2).map(|_| std::sync::Mutex::new(None)).collect();
            run_split(&[late], &|part| {
                *ran[part].lock().unwrap() = Some(thread::current().id());
            });
            let on_caller = ran.iter().all(|r| *r.lock().unwrap() == Some(caller));
            let _ = sender.send(on_caller);
        });
        let on_caller = receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("the split waited for a helper that never starts its part");
        assert!(on_caller, "both parts ran, on the caller's thread");
        assert_eq!(late.state.load(Ordering::Relaxed), IDLE);
        // SAFETY: the split is over and the helper has no thread.
        assert!(unsafe { (*late.job.get()).is_none() });
    }

    /// Splits while busy threads hold every core (the helpers are often
    /// late, so parts run on either thread): each item still runs once.
    #[test]
    fn every_item_runs_once_beside_busy_threads() {
        let stop = AtomicBool::new(false);
        let cores = thread::available_parallelism().map_or(2, |n| n.get());
        thread::scope(|scope| {
            for _ in 0..cores {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                });
            }
            for round in 0..300 {
                let seen: Vec<AtomicUsize> = (0..2).map(|_| AtomicUsize::new(0)).collect();
                for_each(vec![0usize, 1], |i| {
                    seen[i].fetch_add(1, Ordering::Relaxed);
                });
                for (i, count) in seen.iter().enumerate() {
                    assert_eq!(count.load(Ordering::Relaxed), 1, "round {round}, item {i}");
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn a_panicking_part_panics_the_caller_and_the_pool_goes_on() {
        let result = catch_unwind(|| {
            for_each(vec![0usize, 1], |i| {
                if i == 1 {
                    panic!("part {i}");
                }
            })
        });
        assert!(result.is_err());
        // Every part panics, the caller's included: no flag is left behind.
        let all = catch_unwind(|| for_each(vec![0usize, 1], |i| panic!("part {i}")));
        assert!(all.is_err());
        let sum = AtomicUsize::new(0);
        for_each(vec![3usize, 4], |n| {
            sum.fetch_add(n, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 7);
    }
}
