//! Threads that run plain `def` executors, off the runtime's workers.
//!
//! A thread that is not Python's own gets a Python thread state when it first takes the GIL and
//! loses it when it lets go, so a `def` callback run on a tokio blocking thread would see its
//! `threading.local()` data vanish between calls. These threads take a thread state once, when
//! they start, and keep it (the GIL released) for as long as they live: an app's per-thread
//! state (a session, a connection) survives from one callback to the next.
//!
//! The pool grows when every thread is busy (a callback that hangs past its executor's timeout
//! keeps its thread) and never shrinks: its size is the most `def` callbacks that ever ran at
//! once. Idle threads wait without the GIL and hold no Python objects. After `fork()` the child
//! has none of them, but every call there is refused first (`RUNTIME_FORKED`).

use pyo3::prelude::*;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

type Job = Box<dyn FnOnce(Python<'_>) + Send>;

#[derive(Default)]
struct Pool {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Run `job` with the GIL on one of the pool's threads; returns at once.
pub fn run(job: impl FnOnce(Python<'_>) + Send + 'static) {
    let pool = POOL.get_or_init(Pool::default);
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    state.jobs.push_back(Box::new(job));
    let spare = state.idle >= state.jobs.len();
    drop(state);
    if spare {
        pool.ready.notify_one();
    } else {
        // If no thread can be started the job waits for a busy one; with none at all, the
        // executor's timeout answers the apply.
        let _ = std::thread::Builder::new()
            .name("synapsor-def".into())
            .spawn(move || serve(pool));
    }
}

fn serve(pool: &'static Pool) {
    // Attach once and stay attached (without holding the GIL while waiting): the inner `attach`
    // for each job finds this thread state and only takes the GIL.
    Python::attach(|py| {
        py.detach(|| {
            loop {
                let job = {
                    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if let Some(job) = state.jobs.pop_front() {
                            break job;
                        }
                        state.idle += 1;
                        state = pool.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                        state.idle -= 1;
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
