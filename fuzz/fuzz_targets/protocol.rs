//! Protocol objects and handler receipts: parse, and re-serialise what parsed, without panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synapsor_runner::protocol::{
    ChangeSet, ExecutionReceipt, HandlerReceipt, RunnerRegistration, WritebackJob,
};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(cs) = ChangeSet::parse(&v) {
        let _ = cs.compute_hash();
    }
    if let Ok(job) = WritebackJob::parse(&v) {
        let _ = WritebackJob::parse(&job.to_value()).expect("a parsed job round-trips");
    }
    if let Ok(r) = ExecutionReceipt::parse(&v) {
        let _ = r.compute_hash();
    }
    let _ = RunnerRegistration::parse(&v);
    let _ = HandlerReceipt::parse(&v);
});
