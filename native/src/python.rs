//! The Python module `tvote_native` (PyO3, abi3 for CPython 3.11+). `crypto/_native.py` is its only user:
//! it wraps these functions into the same interface as the reference batch check.
//!
//! A ballot is passed in its dict form (what `json.loads` gives and `EncryptedBallot.to_dict()` returns);
//! it is converted to [`Value`] with the GIL held, then decoded and verified with the GIL released.
//! A verdict is `None` (valid) or `(check, subject, cause, message)`: a decoding failure has the check
//! `"invalid-encoding"`, every other check is named as the reference names it (docs/protocol.md §9.5).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyLong, PyString};

use crate::ballot::{ballot_hash, decode_ballot, Ballot, ContestSpec, Election, Pt};
use crate::canonical;
use crate::merkle;
use crate::proofs::{self, Item, Statement};
use crate::screen;
use crate::tally;
use crate::value::Value;
use crate::verify::{self, Failure};

type Verdict = Option<(String, Option<String>, Option<String>, String)>;
type Sums<'py> = Option<Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>>;
type BatchOutcome<'py> = (Vec<Verdict>, Sums<'py>, Vec<Option<Bound<'py, PyBytes>>>);

/// Deeper than any ballot (a ballot nests 6 levels): anything below this is refused as `Other`, so a
/// hostile object cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

fn to_value(ob: &Bound<'_, PyAny>) -> Value {
    to_value_at(ob, 0)
}

fn to_value_at(ob: &Bound<'_, PyAny>, depth: usize) -> Value {
    if let Ok(s) = ob.downcast_exact::<PyString>() {
        return s.to_str().map_or(Value::Other, |s| Value::Str(s.to_owned()));
    }
    if depth >= MAX_DEPTH {
        return Value::Other;
    }
    if let Ok(d) = ob.downcast::<PyDict>() {
        let mut items = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            match k
                .downcast_exact::<PyString>()
                .ok()
                .and_then(|k| k.to_str().ok().map(str::to_owned))
            {
                Some(k) => items.push((k, to_value_at(&v, depth + 1))),
                None => return Value::Other,
            }
        }
        return Value::Map(items);
    }
    if let Ok(l) = ob.downcast::<PyList>() {
        return Value::List(l.iter().map(|x| to_value_at(&x, depth + 1)).collect());
    }
    if let Ok(b) = ob.downcast_exact::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if ob.is_exact_instance_of::<PyLong>() {
        return Value::Int(ob.extract::<i64>().ok());
    }
    Value::Other
}

/// The election a batch is checked against (`crypto.ElectionContext`'s public values).
#[pyclass(frozen, name = "Election", module = "tvote_native")]
pub struct PyElection {
    inner: Election,
}

#[pymethods]
impl PyElection {
    /// `Election(base_hash, public_key, [(contest_id, [selection_id, …], min, max), …])`; `ValueError`
    /// for what `crypto.ElectionContext` refuses (a key that is not a point or is the identity, …).
    #[new]
    fn new(
        base_hash: &[u8],
        public_key: &[u8],
        contests: Vec<(String, Vec<String>, u32, u32)>,
    ) -> PyResult<Self> {
        let bh: [u8; 32] = base_hash
            .try_into()
            .map_err(|_| PyValueError::new_err("base_hash is 32 bytes"))?;
        let k: [u8; 32] = public_key
            .try_into()
            .map_err(|_| PyValueError::new_err("public_key is 32 bytes"))?;
        let specs = contests
            .into_iter()
            .map(|(id, selection_ids, min, max)| ContestSpec {
                id,
                selection_ids,
                min,
                max,
            })
            .collect();
        Election::new(bh, k, specs)
            .map(|inner| PyElection { inner })
            .map_err(PyValueError::new_err)
    }
}

fn verdict(f: Failure) -> Verdict {
    let message = match f.cause {
        Some(c) => format!("{} failed ({c})", f.check),
        None => format!("{} failed", f.check),
    };
    Some((f.check, f.subject, f.cause.map(str::to_string), message))
}

fn decode_all(values: &[Value]) -> Vec<Result<Ballot, String>> {
    values.iter().map(|v| decode_ballot(v).map_err(|e| e.0)).collect()
}

/// Verify a batch of ballots (dict form) by the batch check of §12. Returns the verdicts; if `sum_mask`
/// is given, the homomorphic sum per selection (manifest order, `(a, b)` encodings) of the ballots that
/// are valid and whose mask entry is true; and the ballot hash (§10) of each valid ballot (`None` for the
/// others).
#[pyfunction]
#[pyo3(signature = (election, ballots, sum_mask=None))]
fn verify_ballots<'py>(
    py: Python<'py>,
    election: &PyElection,
    ballots: &Bound<'py, PyList>,
    sum_mask: Option<Vec<bool>>,
) -> PyResult<BatchOutcome<'py>> {
    if let Some(m) = &sum_mask {
        if m.len() != ballots.len() {
            return Err(PyValueError::new_err("sum_mask has one entry per ballot"));
        }
    }
    let values: Vec<Value> = ballots.iter().map(|b| to_value(&b)).collect();
    let e = &election.inner;
    let (verdicts, sums, hashes) = py.allow_threads(|| {
        let decoded = decode_all(&values);
        let ok: Vec<&Ballot> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        let mut checked = verify::check_batch(e, &ok).into_iter();
        let verdicts: Vec<Verdict> = decoded
            .iter()
            .map(|d| match d {
                Err(msg) => Some(("invalid-encoding".to_string(), None, None, msg.clone())),
                Ok(_) => checked.next().flatten().and_then(verdict),
            })
            .collect();
        let sums = sum_mask.map(|mask| {
            let counted: Vec<&Ballot> = decoded
                .iter()
                .zip(&verdicts)
                .zip(mask)
                .filter_map(|((d, v), m)| if m && v.is_none() { d.as_ref().ok() } else { None })
                .collect();
            verify::sum_ciphertexts(e, &counted)
                .into_iter()
                .map(|(a, b)| (a.compress().to_bytes(), b.compress().to_bytes()))
                .collect::<Vec<_>>()
        });
        let hashes: Vec<Option<[u8; 32]>> = decoded
            .iter()
            .zip(&verdicts)
            .map(|(d, v)| match (d, v) {
                (Ok(b), None) => Some(ballot_hash(b)),
                _ => None,
            })
            .collect();
        (verdicts, sums, hashes)
    });
    let sums = sums.map(|s| {
        s.iter()
            .map(|(a, b)| (PyBytes::new_bound(py, a), PyBytes::new_bound(py, b)))
            .collect()
    });
    let hashes = hashes
        .iter()
        .map(|h| h.as_ref().map(|h| PyBytes::new_bound(py, h)))
        .collect();
    Ok((verdicts, sums, hashes))
}

type Encoded<'py> = Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>;

/// The encrypted tally (§13) of ballots **already verified** (dict form): `start` (one `(a, b)` pair of
/// encodings per selection, manifest order; the identity if omitted) plus the sum of `ballots`, which are
/// decoded strictly (every point canonical) and must carry the election's base hash and the manifest's
/// shape; no proof is checked (see `crate::tally`). Returns `(sums, None)`, or `(None, (index, reason))`
/// for the first ballot refused. `ValueError` for a `start` of the wrong length or with a bad encoding.
#[pyfunction]
#[pyo3(signature = (election, ballots, start=None))]
#[allow(clippy::type_complexity)]
fn sum_ballots<'py>(
    py: Python<'py>,
    election: &PyElection,
    ballots: &Bound<'py, PyList>,
    start: Option<Vec<(Vec<u8>, Vec<u8>)>>,
) -> PyResult<(Option<Encoded<'py>>, Option<(usize, String)>)> {
    let e = &election.inner;
    let mut acc = tally::zero(e);
    if let Some(start) = start {
        if start.len() != acc.len() {
            return Err(PyValueError::new_err("start has one (a, b) pair per selection"));
        }
        for (slot, (a, b)) in acc.iter_mut().zip(&start) {
            *slot = (
                pt(a).map_err(PyValueError::new_err)?.p,
                pt(b).map_err(PyValueError::new_err)?.p,
            );
        }
    }
    let values: Vec<Value> = ballots.iter().map(|b| to_value(&b)).collect();
    let out = py.allow_threads(|| {
        tally::sum_values(e, &acc, &values).map(|sums| {
            sums.iter()
                .map(|(a, b)| (a.compress().to_bytes(), b.compress().to_bytes()))
                .collect::<Vec<_>>()
        })
    });
    Ok(match out {
        Ok(sums) => {
            let sums = sums
                .iter()
                .map(|(a, b)| (PyBytes::new_bound(py, a), PyBytes::new_bound(py, b)))
                .collect();
            (Some(sums), None)
        }
        Err(r) => (None, Some((r.index, r.reason))),
    })
}

/// §9.5 one equation at a time (no batch): the verdict of one ballot.
#[pyfunction]
fn verify_ballot(py: Python<'_>, election: &PyElection, ballot: &Bound<'_, PyAny>) -> Verdict {
    let v = to_value(ballot);
    let e = &election.inner;
    py.allow_threads(|| match decode_ballot(&v) {
        Err(err) => Some(("invalid-encoding".to_string(), None, None, err.0)),
        Ok(b) => verify::verify_one(e, &b).err().and_then(verdict),
    })
}

/// Per ballot, its number of group equations, or `None` if it does not decode or fails a check before
/// its equations (`batch.json`'s `equations_per_ballot`).
#[pyfunction]
fn equation_counts(election: &PyElection, ballots: &Bound<'_, PyList>) -> Vec<Option<usize>> {
    let e = &election.inner;
    ballots
        .iter()
        .map(|b| match decode_ballot(&to_value(&b)) {
            Ok(b) if verify::precheck(e, &b).is_ok() => Some(verify::equation_count(e, &b)),
            _ => None,
        })
        .collect()
}

/// `batch.json`'s `combined`: the combination of the ballots that pass the checks before the equations,
/// with the given weights (16 bytes little-endian each, one per equation, in §12's order).
#[pyfunction]
fn combined_point<'py>(
    py: Python<'py>,
    election: &PyElection,
    ballots: &Bound<'py, PyList>,
    weights: Vec<Vec<u8>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut decoded = Vec::new();
    for b in ballots.iter() {
        if let Ok(b) = decode_ballot(&to_value(&b)) {
            decoded.push(b);
        }
    }
    let mut ws = Vec::with_capacity(weights.len());
    for w in weights {
        if w.len() != 16 {
            return Err(PyValueError::new_err("a weight is 16 bytes"));
        }
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(&w);
        ws.push(curve25519_dalek::scalar::Scalar::from_bytes_mod_order(b));
    }
    let p = verify::combined_with_weights(&election.inner, &decoded, &ws).map_err(PyValueError::new_err)?;
    Ok(PyBytes::new_bound(py, &p.compress().to_bytes()))
}

fn pt(b: &[u8]) -> Result<Pt, String> {
    let enc: [u8; 32] = b.try_into().map_err(|_| "a point is 32 bytes".to_string())?;
    Pt::decode(enc).ok_or_else(|| "not the canonical encoding of a ristretto255 element".to_string())
}

fn sc(b: &[u8]) -> Result<curve25519_dalek::scalar::Scalar, String> {
    let enc: [u8; 32] = b.try_into().map_err(|_| "a scalar is 32 bytes".to_string())?;
    Option::from(curve25519_dalek::scalar::Scalar::from_canonical_bytes(enc))
        .ok_or_else(|| "non-canonical scalar".to_string())
}

/// One statement from `("schnorr", X, R, v, context)` or `("chaum-pedersen", X, A, Y, R1, R2, v, context)`
/// (points and scalars as 32 bytes; context items as bytes, or an int for a u64).
fn statement(ob: &Bound<'_, PyAny>) -> Result<Statement, String> {
    let t = ob
        .downcast::<pyo3::types::PyTuple>()
        .map_err(|_| "a statement is a tuple".to_string())?;
    let kind: String = t
        .get_item(0)
        .and_then(|k| k.extract())
        .map_err(|_| "no kind".to_string())?;
    let bytes = |i: usize| -> Result<Vec<u8>, String> {
        t.get_item(i)
            .and_then(|x| x.extract::<Vec<u8>>())
            .map_err(|_| format!("item {i} is not bytes"))
    };
    let context = |i: usize| -> Result<Vec<Item>, String> {
        let l = t.get_item(i).map_err(|_| "no context".to_string())?;
        let l = l
            .downcast::<PyList>()
            .map_err(|_| "the context is a list".to_string())?;
        l.iter()
            .map(|x| {
                if x.is_exact_instance_of::<PyLong>() {
                    x.extract::<u64>()
                        .map(Item::U64)
                        .map_err(|_| "a u64 is in [0, 2^64)".to_string())
                } else {
                    x.extract::<Vec<u8>>()
                        .map(Item::Bytes)
                        .map_err(|_| "a context item is bytes or an int".to_string())
                }
            })
            .collect()
    };
    match (kind.as_str(), t.len()) {
        ("schnorr", 5) => Ok(Statement::Schnorr { x: pt(&bytes(1)?)?, r: pt(&bytes(2)?)?, v: sc(&bytes(3)?)?, context: context(4)? }),
        ("chaum-pedersen", 8) => Ok(Statement::ChaumPedersen {
            x: pt(&bytes(1)?)?,
            a: pt(&bytes(2)?)?,
            y: pt(&bytes(3)?)?,
            r1: pt(&bytes(4)?)?,
            r2: pt(&bytes(5)?)?,
            v: sc(&bytes(6)?)?,
            context: context(7)?,
        }),
        _ => Err("a statement is (\"schnorr\", X, R, v, context) or (\"chaum-pedersen\", X, A, Y, R1, R2, v, context)".into()),
    }
}

fn statements(items: &Bound<'_, PyList>) -> PyResult<Vec<Statement>> {
    items
        .iter()
        .map(|x| statement(&x).map_err(PyValueError::new_err))
        .collect()
}

/// The trustees' proofs (§T2) in a batch: per statement `None` (valid) or the failed check
/// (`schnorr-pok`, `chaum-pedersen-identity`, `chaum-pedersen`). `ValueError` for a statement that does not
/// decode (the caller passes values it decoded).
#[pyfunction]
fn verify_proofs(py: Python<'_>, items: &Bound<'_, PyList>) -> PyResult<Vec<Option<&'static str>>> {
    let s = statements(items)?;
    Ok(py.allow_threads(|| proofs::check_batch(&s)))
}

/// `proofs.json` → `batch` → `combined` with the given weights (16 bytes little-endian each).
#[pyfunction]
fn combined_proofs_point<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyList>,
    weights: Vec<Vec<u8>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let s = statements(items)?;
    let mut ws = Vec::with_capacity(weights.len());
    for w in weights {
        if w.len() != 16 {
            return Err(PyValueError::new_err("a weight is 16 bytes"));
        }
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(&w);
        ws.push(curve25519_dalek::scalar::Scalar::from_bytes_mod_order(b));
    }
    let p = proofs::combined_with_weights(&s, &ws).map_err(PyValueError::new_err)?;
    Ok(PyBytes::new_bound(py, &p.compress().to_bytes()))
}

/// RFC 9162 inclusion proofs under one tree (`root`, `size`), the roll proofs of cast ballots (V12): each
/// item is `(leaf data, index, path)`, the path its hashes concatenated (32 bytes each). Per item `None`
/// (it verifies) or the reference's reason (`ledger.merkle.verify_inclusion`). `ValueError` for a root
/// or a path that is not made of 32-byte hashes (the caller checks their shape first).
#[pyfunction]
fn verify_inclusions(
    py: Python<'_>,
    root: &Bound<'_, PyBytes>,
    size: u64,
    items: &Bound<'_, PyList>,
) -> PyResult<Vec<Option<&'static str>>> {
    let root: merkle::Hash = root
        .as_bytes()
        .try_into()
        .map_err(|_| PyValueError::new_err("the root is 32 bytes"))?;
    let mut proofs: Vec<(merkle::Hash, u64, Vec<merkle::Hash>)> = Vec::with_capacity(items.len());
    for item in items.iter() {
        let t = item.downcast::<pyo3::types::PyTuple>()?;
        if t.len() != 3 {
            return Err(PyValueError::new_err("an item is (leaf data, index, path)"));
        }
        let leaf = merkle::leaf_hash(t.get_item(0)?.downcast::<PyBytes>()?.as_bytes());
        let index: u64 = t.get_item(1)?.extract()?;
        let raw = t.get_item(2)?;
        let raw = raw.downcast::<PyBytes>()?.as_bytes();
        if raw.len() % 32 != 0 {
            return Err(PyValueError::new_err("a path is 32-byte hashes"));
        }
        let path = raw
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        proofs.push((leaf, index, path));
    }
    Ok(py.allow_threads(|| {
        proofs
            .iter()
            .map(|(leaf, index, path)| {
                merkle::verify_inclusion(leaf, *index, size, path, &root)
                    .err()
                    .map(merkle::InclusionError::message)
            })
            .collect()
    }))
}

/// Seconds per point of one multiscalar multiplication of `n` random points (best of `reps`).
#[pyfunction]
#[pyo3(signature = (n, short=false, reps=3))]
fn msm_seconds_per_point(py: Python<'_>, n: usize, short: bool, reps: usize) -> f64 {
    py.allow_threads(|| crate::bench::msm_seconds_per_point(n, short, reps))
}

/// Seconds per point of RFC 9496 decoding (best of `reps` over `n` points).
#[pyfunction]
#[pyo3(signature = (n, reps=3))]
fn decode_seconds_per_point(py: Python<'_>, n: usize, reps: usize) -> f64 {
    py.allow_threads(|| crate::bench::decode_seconds_per_point(n, reps))
}

/// The leaf hashes (`SHA-256(0x00 || text)`) of the canonical entry texts among `texts`
/// ([`canonical::is_canonical`] with `max_depth`): per text its hash, or `None` for a text the check does
/// not accept (the reference, `ledger.record`, decides and words it). Without the GIL.
#[pyfunction]
fn canonical_leaf_hashes<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyList>,
    max_depth: usize,
) -> PyResult<Vec<Option<Bound<'py, PyBytes>>>> {
    let items: Vec<Bound<'py, PyBytes>> = texts
        .iter()
        .map(|t| t.downcast_into::<PyBytes>().map_err(PyErr::from))
        .collect::<PyResult<_>>()?;
    let raw: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
    let hashes: Vec<Option<merkle::Hash>> = py.allow_threads(|| {
        raw.iter()
            .map(|t| canonical::is_canonical(t, max_depth).then(|| merkle::leaf_hash(t)))
            .collect()
    });
    Ok(hashes
        .into_iter()
        .map(|h| h.map(|h| PyBytes::new_bound(py, &h)))
        .collect())
}

/// The verifier's V23 text screen ([`screen::screen_literals`]) of each text: the distinct literals to
/// look at, or `None` for a text whose payload is walked. The reference is `verifier._privacy._screen`.
#[pyfunction]
fn screen_literals<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyList>,
) -> PyResult<Vec<Option<Vec<Bound<'py, PyBytes>>>>> {
    let items: Vec<Bound<'py, PyBytes>> = texts
        .iter()
        .map(|t| t.downcast_into::<PyBytes>().map_err(PyErr::from))
        .collect::<PyResult<_>>()?;
    let raw: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
    let found: Vec<Option<Vec<&[u8]>>> =
        py.allow_threads(|| raw.iter().map(|t| screen::screen_literals(t)).collect());
    Ok(found
        .into_iter()
        .map(|f| f.map(|v| v.into_iter().map(|l| PyBytes::new_bound(py, l)).collect()))
        .collect())
}

#[pymodule]
fn tvote_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PROTOCOL_VERSION", "2")?;
    m.add_class::<PyElection>()?;
    m.add_function(wrap_pyfunction!(verify_ballots, m)?)?;
    m.add_function(wrap_pyfunction!(verify_ballot, m)?)?;
    m.add_function(wrap_pyfunction!(sum_ballots, m)?)?;
    m.add_function(wrap_pyfunction!(equation_counts, m)?)?;
    m.add_function(wrap_pyfunction!(combined_point, m)?)?;
    m.add_function(wrap_pyfunction!(verify_proofs, m)?)?;
    m.add_function(wrap_pyfunction!(combined_proofs_point, m)?)?;
    m.add_function(wrap_pyfunction!(verify_inclusions, m)?)?;
    m.add_function(wrap_pyfunction!(canonical_leaf_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(screen_literals, m)?)?;
    m.add_function(wrap_pyfunction!(msm_seconds_per_point, m)?)?;
    m.add_function(wrap_pyfunction!(decode_seconds_per_point, m)?)?;
    Ok(())
}
