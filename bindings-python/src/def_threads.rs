//! Threads that run plain `def` executors, off the runtime's workers.
//!
//! A thread that is not Python's own gets a Python thread state when it first takes the GIL
//! and loses it when it lets go: `PyGILState_Ensure` on a tokio blocking thread allocates the
//! state and its frame stack (an `mmap`), and the matching release frees both, on every
//! callback. These threads
//! take a thread state once, when they start, and keep it (the GIL released) for as long as
//! they live, so each callback only takes and gives back the GIL.
//!
//! The pool grows when every thread is busy (a callback that hangs past its executor's timeout
//! keeps its thread, as a blocking thread would) and never shrinks: its size is the most `def`
//! callbacks that ever ran at once. Idle threads wait without the GIL and hold no Python
//! objects. After `fork()` the child has none of them, but every call there is refused first
//! (`RUNTIME_FORKED`).
//!
//! Warm-up ([`expect`], from `Executor::warm_up`, two database round trips before the job):
//! one idle thread is woken and polls for the job, yielding its core between looks, for at
//! most [`SPIN_BUDGET`], so the job is taken without a wake-up when it comes.

use pyo3::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a warmed-up thread polls for its job at most.
const SPIN_BUDGET: Duration = Duration::from_millis(1);

type Job = Box<dyn FnOnce(Python<'_>) + Send>;

#[derive(Default)]
struct Pool {
    state: Mutex<State>,
    ready: Condvar,
    /// `state.jobs.len()`, readable without the lock by a polling thread.
    queued: AtomicUsize,
    /// Jobs taken by a polling thread so far (tests).
    taken_polling: AtomicUsize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job (not yet woken to take one).
    idle: usize,
    /// Threads polling for a job (warmed up).
    polling: usize,
    /// A warm-up woke a thread to poll and no thread has woken since.
    poll_wanted: bool,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Run `job` with the GIL on one of the pool's threads; returns at once.
pub fn run(job: impl FnOnce(Python<'_>) + Send + 'static) {
    let pool = POOL.get_or_init(Pool::default);
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    state.jobs.push_back(Box::new(job));
    pool.queued.store(state.jobs.len(), Ordering::Release);
    // Each queued job needs a thread of its own; a polling one takes it without being woken
    // (it leaves polling only under the lock, after finding the queue empty).
    let (polling, waiting) = (state.polling, state.idle);
    let queued = state.jobs.len();
    drop(state);
    if queued <= polling {
        return;
    }
    if polling + waiting >= queued {
        pool.ready.notify_one();
    } else {
        // If no thread can be started the job waits for a busy one; with none at all, the
        // executor's timeout answers the apply.
        let _ = std::thread::Builder::new()
            .name("synapsor-def".into())
            .spawn(move || serve(pool));
    }
}

/// A job is on its way (a warm-up): have one idle thread poll for it. With none idle, or one
/// already polling, nothing is done: the job goes the usual way.
pub fn expect() {
    let pool = POOL.get_or_init(Pool::default);
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    if state.polling > 0 || state.poll_wanted || state.idle == 0 {
        return;
    }
    state.poll_wanted = true;
    drop(state);
    pool.ready.notify_one();
}

/// Poll for a job for up to `SPIN_BUDGET`, without the lock between looks.
fn poll<'a>(
    pool: &'a Pool,
    mut state: std::sync::MutexGuard<'a, State>,
) -> (std::sync::MutexGuard<'a, State>, Option<Job>) {
    state.poll_wanted = false;
    state.polling += 1;
    drop(state);
    let until = Instant::now() + SPIN_BUDGET;
    loop {
        if pool.queued.load(Ordering::Acquire) == 0 && Instant::now() < until {
            std::thread::yield_now();
            continue;
        }
        let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        let job = take(pool, &mut state);
        if job.is_some() || Instant::now() >= until {
            if job.is_some() {
                pool.taken_polling.fetch_add(1, Ordering::Relaxed);
            }
            state.polling -= 1;
            return (state, job);
        }
    }
}

/// Jobs a warmed-up thread took without being woken for them, since the process started.
pub fn taken_polling() -> usize {
    POOL.get()
        .map_or(0, |p| p.taken_polling.load(Ordering::Relaxed))
}

fn take(pool: &Pool, state: &mut State) -> Option<Job> {
    let job = state.jobs.pop_front();
    pool.queued.store(state.jobs.len(), Ordering::Release);
    job
}

fn serve(pool: &'static Pool) {
    // Attach once and stay attached (without holding the GIL while waiting): the inner
    // `attach` for each job finds this thread state and only takes the GIL.
    Python::attach(|py| {
        py.detach(|| {
            loop {
                let job = {
                    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if let Some(job) = take(pool, &mut state) {
                            break job;
                        }
                        state.idle += 1;
                        state = pool.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                        state.idle -= 1;
                        // The first thread to wake after a warm-up polls (it finds a job that is
                        // already there on its first look).
                        if state.poll_wanted {
                            let (s, job) = poll(pool, state);
                            state = s;
                            if let Some(job) = job {
                                break job;
                            }
                        }
                    }
                };
                // A job answers its apply by itself; one that panics drops its answer (the apply
                // then fails with HANDLER_PANICKED) and the thread carries on.
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Python::attach(job)));
            }
        })
    })
}
