//! Promises settled from the runtime through one threadsafe function per JS thread, made on first
//! use. napi-rs's `create_deferred` makes a threadsafe function for every promise (an async
//! handle, an async resource, a cleanup hook) and closes it again once the promise settles; here
//! a call costs a `napi_create_promise` and, when it settles, one queued job.
//!
//! The shared function is weak: it keeps the event loop alive only while calls are in flight
//! (counted on the JS thread; referenced from zero to one, unreferenced back at zero), as a
//! per-call one would.

use napi::bindgen_prelude::{Env, Function, ToNapiValue};
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// Work for the JS thread.
type Job = Box<dyn FnOnce(&Env) + Send>;

type Lane = ThreadsafeFunction<Job, (), (), napi::Status, false, true>;

/// One JS thread's lane and the calls in flight on it.
struct Thread {
    lane: RefCell<Option<Arc<Lane>>>,
    in_flight: Cell<usize>,
}

thread_local! {
    static THREAD: Thread = const {
        Thread {
            lane: RefCell::new(None),
            in_flight: Cell::new(0),
        }
    };
}

/// A promise's settling end, usable from any thread. Dropped unused (a call that panicked or was
/// dropped), it rejects the promise, so no caller waits forever and the loop is let go.
pub struct Deferred {
    raw: RawDeferred,
    lane: Option<Arc<Lane>>,
}

struct RawDeferred(sys::napi_deferred);
// SAFETY: the handle is only used on the JS thread that made it (in the job it is sent back in).
unsafe impl Send for RawDeferred {}

/// On the JS thread: a new promise and its settling end.
pub fn deferred(env: &Env) -> napi::Result<(Deferred, sys::napi_value)> {
    let lane = lane(env)?;
    let mut raw = std::ptr::null_mut();
    let mut promise = std::ptr::null_mut();
    let status = unsafe { sys::napi_create_promise(env.raw(), &mut raw, &mut promise) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::from_reason("cannot create a promise"));
    }
    THREAD.with(|t| {
        let n = t.in_flight.get();
        if n == 0 {
            unsafe { sys::napi_ref_threadsafe_function(env.raw(), lane.raw()) };
        }
        t.in_flight.set(n + 1);
    });
    Ok((
        Deferred {
            raw: RawDeferred(raw),
            lane: Some(lane),
        },
        promise,
    ))
}

impl Deferred {
    /// From any thread: settle the promise on the JS thread with what `f` makes there.
    pub fn settle<T, F>(mut self, f: F)
    where
        T: ToNapiValue,
        F: FnOnce(&Env) -> napi::Result<T> + Send + 'static,
    {
        if let Some(lane) = self.lane.take() {
            post(&lane, self.take_raw(), f);
        }
    }

    /// A handle that runs work on this promise's JS thread (while the call is in flight, the
    /// thread's lane is referenced).
    pub fn js_thread(&self) -> Option<JsThread> {
        self.lane.clone().map(JsThread)
    }

    fn take_raw(&mut self) -> RawDeferred {
        RawDeferred(std::mem::replace(&mut self.raw.0, std::ptr::null_mut()))
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            post(&lane, self.take_raw(), |_| -> napi::Result<()> {
                Err(napi::Error::from_reason("the call ended without a result"))
            });
        }
    }
}

/// Runs work on one JS thread, from any thread.
pub struct JsThread(Arc<Lane>);

impl JsThread {
    /// Queue `f` on the JS thread; dropped if the environment is going away.
    pub fn run(&self, f: impl FnOnce(&Env) + Send + 'static) {
        let _ = self
            .0
            .call(Box::new(f), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// Queue the settling of `raw` on its JS thread. A closing lane (the environment is going away)
/// drops the job: nobody is left to answer.
fn post<T, F>(lane: &Lane, raw: RawDeferred, f: F)
where
    T: ToNapiValue,
    F: FnOnce(&Env) -> napi::Result<T> + Send + 'static,
{
    let job: Job = Box::new(move |env: &Env| {
        let raw = raw;
        let e = env.raw();
        let (ok, value) = match f(env) {
            Ok(v) => (true, unsafe { T::to_napi_value(e, v) }),
            Err(err) => (false, unsafe { napi::Error::to_napi_value(e, err) }),
        };
        unsafe {
            match value {
                Ok(v) if ok => sys::napi_resolve_deferred(e, raw.0, v),
                Ok(v) => sys::napi_reject_deferred(e, raw.0, v),
                Err(err) => {
                    let v = napi::Error::to_napi_value(e, err).unwrap_or_else(|_| {
                        let mut undefined = std::ptr::null_mut();
                        sys::napi_get_undefined(e, &mut undefined);
                        undefined
                    });
                    sys::napi_reject_deferred(e, raw.0, v)
                }
            };
        }
        call_finished(env);
    });
    let _ = lane.call(job, ThreadsafeFunctionCallMode::NonBlocking);
}

/// On the JS thread, after a promise settled: let the loop go once nothing is in flight.
fn call_finished(env: &Env) {
    THREAD.with(|t| {
        let n = t.in_flight.get().saturating_sub(1);
        t.in_flight.set(n);
        if n == 0
            && let Some(lane) = t.lane.borrow().as_ref()
        {
            unsafe { sys::napi_unref_threadsafe_function(env.raw(), lane.raw()) };
        }
    });
}

/// This JS thread's lane, made on first use (weak until a call is in flight).
fn lane(env: &Env) -> napi::Result<Arc<Lane>> {
    THREAD.with(|t| {
        if let Some(lane) = t.lane.borrow().as_ref() {
            return Ok(lane.clone());
        }
        let noop: Function<(), ()> =
            env.create_function_from_closure("synapsorSettle", |_| Ok(()))?;
        let lane = Arc::new(
            noop.build_threadsafe_function::<Job>()
                .callee_handled::<false>()
                .weak::<true>()
                .build_callback(|ctx| {
                    (ctx.value)(&ctx.env);
                    Ok(())
                })?,
        );
        *t.lane.borrow_mut() = Some(lane.clone());
        Ok(lane)
    })
}
