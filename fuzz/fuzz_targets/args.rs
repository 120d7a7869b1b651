//! Call arguments, JSON to facts. Oracle: serde_json's own reading of the same bytes. Whatever
//! captix accepts is a JSON object, and its leaves are exactly the document's scalar values
//! (strings, 64-bit integers, booleans, null) at the pointers captix names.
#![no_main]

use captix::{limits, Args, Code, Scalar};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn scalars(v: &Value, pointer: &mut String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                scalars(child, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                scalars(child, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Number(n) if n.as_i64().is_none() => {} // floats, u64 over i64: no fact
        scalar => out.push((pointer.clone(), scalar.clone())),
    }
}

fn as_json(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Int(i) => Value::from(*i),
        Scalar::Str(s) => Value::String(s.clone()),
        Scalar::Null => Value::Null,
    }
}

fuzz_target!(|data: &[u8]| {
    match Args::from_slice(data) {
        Ok(args) => {
            assert!(data.len() <= limits::MAX_ARGS_BYTES);
            let doc: Value = serde_json::from_slice(data).expect("captix accepted invalid JSON");
            assert!(doc.is_object(), "captix accepted a non-object");
            let mut want = Vec::new();
            scalars(&doc, &mut String::new(), &mut want);
            want.sort_by(|a, b| a.0.cmp(&b.0));
            let got: Vec<(String, Value)> = args
                .leaves()
                .iter()
                .map(|(p, s)| (p.clone(), as_json(s)))
                .collect();
            assert_eq!(got, want, "leaves differ from serde_json's reading");
            assert!(got.len() <= limits::MAX_ARGS_LEAVES);
            for (p, v) in &got {
                assert_eq!(
                    doc.pointer(p),
                    Some(v),
                    "pointer {p} does not name its value"
                );
            }
        }
        Err(denial) => {
            assert!(
                matches!(
                    denial.code,
                    Code::ArgsMalformed
                        | Code::ArgsDuplicateKey
                        | Code::ArgsTooLarge
                        | Code::ArgsTooDeep
                ),
                "argument error with a non-argument code: {denial:?}"
            );
            assert!(!denial.reason.is_empty());
        }
    }
});
