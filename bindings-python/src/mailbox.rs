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

use pyo3::prelude::*;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

enum Delivery {
    /// Settle an awaitable with a call's result.
    Settle(Py<PyAny>, Result<Value, PyErr>),
    /// Run something on the loop thread (start an executor coroutine).
    Call(Box<dyn FnOnce(Python<'_>) + Send>),
}

#[pyclass(frozen, module = "synapsor_runner._native")]
pub struct Mailbox {
    wake_tx: UnixStream,
    wake_rx: UnixStream,
    queue: Mutex<Vec<Delivery>>,
    /// A wake-up byte is on its way and the loop has not drained yet: no need for another.
    armed: AtomicBool,
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

    /// The mailbox a call started from `event_loop` set up, if any (from any thread).
    pub fn existing(event_loop: &Bound<'_, PyAny>) -> Option<Py<Mailbox>> {
        let attr = pyo3::intern!(event_loop.py(), "_synapsor_runner_mailbox");
        let found = event_loop.getattr(attr).ok()?;
        found.cast_into::<Mailbox>().ok().map(Bound::unbind)
    }

    /// From any thread, without the GIL: queue a result for `target` and wake the loop.
    pub fn post(&self, target: Py<PyAny>, out: Result<Value, PyErr>) {
        self.push(Delivery::Settle(target, out));
    }

    /// From any thread, without the GIL: run `f` on the loop thread.
    pub fn post_call(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        self.push(Delivery::Call(Box::new(f)));
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
    let batch = std::mem::take(&mut *m.queue.lock().unwrap_or_else(|e| e.into_inner()));
    for delivery in batch {
        let (target, out) = match delivery {
            Delivery::Settle(target, out) => (target, out),
            Delivery::Call(f) => {
                f(py);
                continue;
            }
        };
        let (ok, value) = crate::outcome(py, out);
        if let Err(e) = crate::deliver(target.bind(py), ok, &value) {
            e.print(py);
        }
    }
}
