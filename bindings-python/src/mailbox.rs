//! Results travel back to the caller's event loop through a mailbox: a queue plus a socket the
//! loop watches with `add_reader`. A runtime worker that finishes a call pushes the result and
//! writes one byte, without taking the GIL; the loop thread wakes once, converts the results
//! and settles their futures.
//!
//! `loop.call_soon_threadsafe` from the worker would need the GIL on the worker: the loop thread
//! wakes on the self-pipe, then waits for the GIL the worker still holds, then wakes again, and
//! the conversion to Python objects runs on the worker under the GIL as well. On a VM each of
//! those wake-ups costs tens of microseconds.
//!
//! Loops that cannot take a reader (or an attribute to keep the mailbox on) keep the
//! `call_soon_threadsafe` path.
//!
//! Busy-wait (`Runner.open(..., busy_wait=...)`, off by default): while calls started with a
//! budget are in flight, a `call_soon` ticker keeps the loop turning instead of letting it sleep
//! in its selector, and takes results straight from the queue. Other tasks and I/O still run on
//! every turn; what it saves is the operating system waking a sleeping loop thread, paid with
//! the loop thread's CPU for at most the budget per call.
//!
//! Pre-wake (on by default, `busy_wait` off): a call whose remaining work is local (the core's
//! `embed::finishing`) posts a `Prewake`; the loop wakes while that work runs and turns with the
//! same ticker until the result, for at most `PREWAKE_BUDGET`.

use pyo3::prelude::*;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

enum Delivery {
    /// Settle an awaitable with a call's result.
    Settle(Py<PyAny>, Result<Value, PyErr>),
    /// Run something on the loop thread (start an executor coroutine).
    Call(Box<dyn FnOnce(Python<'_>) + Send>),
    /// A call is about to finish: keep the loop turning until it does (or the budget ends).
    Prewake,
}

/// How long a loop woken ahead of a result keeps turning for it at most.
const PREWAKE_BUDGET: Duration = Duration::from_millis(1);

#[pyclass(frozen, module = "synapsor_runner._native")]
pub struct Mailbox {
    wake_tx: UnixStream,
    wake_rx: UnixStream,
    queue: Mutex<Vec<Delivery>>,
    /// A wake-up byte is on its way and the loop has not drained yet: no need for another.
    armed: AtomicBool,
    /// Calls started with a busy-wait budget that have not delivered yet (any thread).
    in_flight: AtomicUsize,
    /// Keep turning until then while such calls are in flight (loop thread).
    hot_until: Mutex<Option<Instant>>,
    /// A `tick` is scheduled on the loop.
    ticking: AtomicBool,
    /// `tick` as a Python callable, made once.
    tick: OnceLock<Py<PyAny>>,
}

impl Mailbox {
    /// The mailbox of `event_loop` (the running loop, on its own thread), set up on first use.
    pub fn of(event_loop: &Bound<'_, PyAny>) -> Option<Py<Mailbox>> {
        let py = event_loop.py();
        let attr = pyo3::intern!(py, "_synapsor_runner_mailbox");
        if let Ok(existing) = event_loop.getattr(attr)
            && let Ok(m) = existing.cast_into::<Mailbox>()
        {
            return Some(m.unbind());
        }
        let (wake_tx, wake_rx) = UnixStream::pair().ok()?;
        wake_tx.set_nonblocking(true).ok()?;
        wake_rx.set_nonblocking(true).ok()?;
        let fd = wake_rx.as_raw_fd();
        let mailbox = Py::new(
            py,
            Mailbox {
                wake_tx,
                wake_rx,
                queue: Mutex::new(Vec::new()),
                armed: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                hot_until: Mutex::new(None),
                ticking: AtomicBool::new(false),
                tick: OnceLock::new(),
            },
        )
        .ok()?;
        event_loop.setattr(attr, &mailbox).ok()?;
        let added = wrap_pyfunction!(drain, py).and_then(|cb| {
            event_loop.call_method1(pyo3::intern!(py, "add_reader"), (fd, cb, &mailbox))
        });
        if added.is_err() {
            let _ = event_loop.delattr(attr);
            return None;
        }
        Some(mailbox)
    }

    /// From any thread, without the GIL: queue a result for `target` and wake the loop.
    pub fn post(&self, target: Py<PyAny>, out: Result<Value, PyErr>) {
        self.push(Delivery::Settle(target, out));
    }

    /// From any thread, without the GIL: run `f` on the loop thread.
    pub fn post_call(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        self.push(Delivery::Call(Box::new(f)));
    }

    /// From a runtime worker, without the GIL: a call of this loop has only local work left.
    pub fn prewake(&self) {
        self.push(Delivery::Prewake);
    }

    /// Before starting a call with a busy-wait budget (any thread).
    pub fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// After its result is posted or delivered (any thread).
    pub fn call_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// On the loop thread, after starting a call that did not finish at once: keep the loop
    /// turning for up to `budget` more (or as long as an earlier call asked for).
    pub fn keep_hot(mailbox: &Bound<'_, Mailbox>, event_loop: &Bound<'_, PyAny>, budget: Duration) {
        let m = mailbox.get();
        {
            let mut until = m.hot_until.lock().unwrap_or_else(|e| e.into_inner());
            let wanted = Instant::now() + budget;
            *until = Some(until.map_or(wanted, |u| u.max(wanted)));
        }
        if !m.ticking.swap(true, Ordering::AcqRel) && schedule_tick(mailbox, event_loop).is_err() {
            m.ticking.store(false, Ordering::Release);
        }
    }

    fn take_batch(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, delivery: Delivery) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(delivery);
        if !self.armed.swap(true, Ordering::AcqRel) {
            let _ = (&self.wake_tx).write(&[1]);
        }
    }
}

/// On the loop thread: run every queued delivery; settle futures unless cancelled meanwhile.
#[pyfunction]
fn drain(mailbox: &Bound<'_, Mailbox>) {
    let py = mailbox.py();
    let m = mailbox.get();
    let mut buf = [0u8; 64];
    loop {
        match (&m.wake_rx).read(&mut buf) {
            Ok(n) if n > 0 => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
    // Disarm before taking the queue: a result posted after the take writes a new byte.
    m.armed.store(false, Ordering::Release);
    run(py, Some(mailbox), m.take_batch());
}

/// One turn of a busy-waiting loop: deliver what has arrived, and come back next turn while
/// calls are in flight and the budget lasts. It leaves `armed` and the socket alone: a byte
/// written for a delivery taken here only makes a later `drain` find an empty queue.
#[pyfunction]
fn tick(mailbox: &Bound<'_, Mailbox>, event_loop: &Bound<'_, PyAny>) {
    let m = mailbox.get();
    // Read before taking the queue: a call posts its result before it stops counting, so once
    // this reads zero, every result is already in the batch below.
    let busy = m.in_flight.load(Ordering::Acquire) > 0;
    let batch = m.take_batch();
    if batch.is_empty() {
        mailbox.py().detach(std::thread::yield_now);
    }
    run(mailbox.py(), Some(mailbox), batch);
    let until = *m.hot_until.lock().unwrap_or_else(|e| e.into_inner());
    let hot = busy && until.is_some_and(|u| Instant::now() < u);
    if !(hot && schedule_tick(mailbox, event_loop).is_ok()) {
        m.ticking.store(false, Ordering::Release);
    }
}

fn schedule_tick(mailbox: &Bound<'_, Mailbox>, event_loop: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = mailbox.py();
    let m = mailbox.get();
    let f = match m.tick.get() {
        Some(f) => f.bind(py).clone(),
        None => {
            let f = wrap_pyfunction!(tick, py)?.into_any();
            m.tick.get_or_init(|| f.clone().unbind()).bind(py).clone()
        }
    };
    event_loop
        .call_method1(pyo3::intern!(py, "call_soon"), (f, mailbox, event_loop))
        .map(drop)
}

/// On the loop thread: run deliveries; settle futures unless cancelled meanwhile.
fn run(py: Python<'_>, mailbox: Option<&Bound<'_, Mailbox>>, batch: Vec<Delivery>) {
    for delivery in batch {
        let (target, out) = match delivery {
            Delivery::Settle(target, out) => (target, out),
            Delivery::Call(f) => {
                f(py);
                continue;
            }
            Delivery::Prewake => {
                if let Some(m) = mailbox
                    && let Ok(lp) = pyo3_async_runtimes::get_running_loop(py)
                {
                    Mailbox::keep_hot(m, &lp, PREWAKE_BUDGET);
                }
                continue;
            }
        };
        let (ok, value) = crate::outcome(py, out);
        if let Err(e) = crate::deliver(target.bind(py), ok, &value) {
            e.print(py);
        }
    }
}
