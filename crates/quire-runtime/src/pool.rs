//! The compute thread pool of the decoder.
//!
//! A decode step is a few hundred short parallel sections (each matrix product, each
//! layer's attention), tens of microseconds apiece. A general work-stealing pool puts its
//! workers to sleep between them and pays a futex wake-up every time, which measured as
//! about as much time as the arithmetic. Here the workers spin on an epoch counter while
//! work keeps coming, and park only after a stretch of idleness, as llama.cpp's pool does.
//! The caller's thread takes part in every section, so `threads` is the total.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker keeps polling (spinning, then yielding) before it parks.
const SPIN: Duration = Duration::from_millis(3);
/// Polls of a waiting thread before it starts yielding its core (tens of microseconds:
/// the gap between the sections of one decode step).
const EAGER_SPINS: u32 = 4096;

type Task<'a> = &'a (dyn Fn(usize) + Sync);

/// One section: tasks `0..n`, handed out one at a time.
struct Job {
    // Lifetime erased: the caller waits until every worker has let go of the job.
    f: Task<'static>,
    n: usize,
    next: AtomicUsize,
    panicked: AtomicBool,
}

struct Shared {
    epoch: AtomicUsize,
    job: AtomicPtr<Job>,
    /// Workers done with the current epoch's job.
    acked: AtomicUsize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

pub struct Pool {
    shared: Arc<Shared>,
    workers: usize,
    /// One section at a time; a second caller runs its tasks on its own thread.
    busy: Mutex<()>,
}

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the total thread count of the pool; only effective before its first use.
pub fn set_threads(n: usize) {
    THREADS.store(n, Relaxed);
}

/// The process's pool, started on first use with the thread count set by [`set_threads`]
/// (default: the available parallelism).
pub fn global() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = match THREADS.load(Relaxed) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Pool::new(n)
    })
}

impl Pool {
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            acked: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = threads.max(1) - 1;
        for i in 0..workers {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("quire-compute-{i}"))
                .spawn(move || worker(&s))
                .expect("starting a compute thread");
        }
        Self {
            shared,
            workers,
            busy: Mutex::new(()),
        }
    }

    /// Total threads, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Runs `f(0..n)` across the pool and returns when all are done.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let guard = match self.busy.try_lock() {
            Ok(g) if self.workers > 0 && n > 1 => g,
            _ => {
                (0..n).for_each(f);
                return;
            }
        };
        // SAFETY: the job (and `f`) outlive every use: the workers touch it only between
        // seeing the new epoch and acknowledging it, and we wait for all acknowledgements.
        let f: Task<'static> = unsafe { std::mem::transmute::<Task<'_>, Task<'static>>(f) };
        let job = Job {
            f,
            n,
            next: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        };
        let s = &*self.shared;
        s.acked.store(0, SeqCst);
        s.job.store(&job as *const Job as *mut Job, SeqCst);
        s.epoch.fetch_add(1, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        work(&job);
        let mut spins = 0u32;
        while s.acked.load(Acquire) < self.workers {
            spins = spins.saturating_add(1);
            if spins < EAGER_SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        s.job.store(std::ptr::null_mut(), SeqCst);
        drop(guard);
        if job.panicked.load(SeqCst) {
            panic!("a compute task panicked");
        }
    }

    /// Splits `data` into chunks of `chunk` elements and runs `f(index, chunk)` on each in
    /// parallel.
    pub fn chunks_mut<T: Send>(
        &self,
        data: &mut [T],
        chunk: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let chunk = chunk.max(1);
        let len = data.len();
        let n = len.div_ceil(chunk);
        let base = SendPtr(data.as_mut_ptr());
        self.run(n, &|i| {
            let start = i * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: each task gets a disjoint range of `data`, which outlives `run`.
            let part =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(i, part);
        });
    }
}

struct SendPtr<T>(*mut T);
// SAFETY: only used to hand disjoint ranges to the pool's tasks.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

fn work(job: &Job) {
    loop {
        let i = job.next.fetch_add(1, Relaxed);
        if i >= job.n {
            break;
        }
        if catch_unwind(AssertUnwindSafe(|| (job.f)(i))).is_err() {
            job.panicked.store(true, SeqCst);
        }
    }
}

fn worker(s: &Shared) {
    // Epoch 0 is the pool's start: a worker that starts late must still answer the
    // first section, which may already have begun.
    let mut seen = 0;
    loop {
        let idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = s.epoch.load(Acquire);
            if e != seen {
                seen = e;
                break;
            }
            spins = spins.saturating_add(1);
            if spins < EAGER_SPINS {
                std::hint::spin_loop();
                continue;
            }
            if idle_since.elapsed() < SPIN {
                // Yield rather than burn the core: when other processes want the CPU
                // (a build, the desktop's webview), a thread that spins in place keeps
                // the very thread it waits for off the core.
                std::thread::yield_now();
                continue;
            }
            let mut l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_add(1, SeqCst);
            while s.epoch.load(SeqCst) == seen {
                l = s.wake.wait(l).unwrap_or_else(|e| e.into_inner());
            }
            s.sleepers.fetch_sub(1, SeqCst);
        }
        let job = s.job.load(SeqCst);
        if !job.is_null() {
            // SAFETY: the caller keeps the job alive until we acknowledge this epoch.
            work(unsafe { &*job });
        }
        s.acked.fetch_add(1, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_across_many_sections() {
        let pool = Pool::new(3);
        for n in [0, 1, 2, 7, 64, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n, &|i| {
                hits[i].fetch_add(1, Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "n = {n}");
        }
    }

    #[test]
    fn chunks_cover_the_slice_disjointly() {
        let pool = Pool::new(2);
        let mut v = vec![0usize; 1001];
        pool.chunks_mut(&mut v, 64, |i, part| {
            for (j, x) in part.iter_mut().enumerate() {
                *x += i * 64 + j;
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| i == x));
    }

    #[test]
    fn workers_that_parked_wake_for_the_next_section() {
        let pool = Pool::new(2);
        pool.run(4, &|_| {});
        std::thread::sleep(SPIN * 3);
        assert_eq!(
            pool.shared.sleepers.load(SeqCst),
            1,
            "the idle worker parked"
        );
        let count = AtomicUsize::new(0);
        pool.run(100, &|_| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 100);
    }

    #[test]
    fn a_panicking_task_is_reported_and_the_pool_still_works() {
        let pool = Pool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(8, &|i| {
                if i == 5 {
                    panic!("task 5");
                }
            })
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(8, &|_| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 8);
    }
}
