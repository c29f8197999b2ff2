//! Sum daily transfer volumes per token (a Trace UDF in Rust).
//!
//! Job (runtime lambda):
//!   operator: udf
//!   runtime: lambda
//!   config:
//!     language: rust
//!     entrypoint: daily_volumes/target/release/daily_volumes   # built binary
//!     timeout: 30s
//!   outputs: [erc20.daily_volumes]      # the rows go to the job's output
//!
//! Task payload: {"partition": "2024-05", "transfers": [{"timestamp": 1714521600,
//!   "token": "0x..", "value": "1000000"}, ...]} (values as decimal strings or
//!   0x quantities: uint256 amounts do not fit JSON numbers).
//! Output: one row per (UTC day, token): {day, token, volume, transfers}, the
//! volume as a decimal string; an event for the partition.  Amounts are summed
//! in u128 and an overflow fails the attempt for good (it is the data's).

use std::collections::BTreeMap;
use trace_udf::{run, Json, UdfError};

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

fn day_of(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

fn main() {
    run(|task, out| {
        let fatal = |m: &str| UdfError::Fatal(m.to_string());
        let partition = task
            .payload
            .get("partition")
            .and_then(Json::as_str)
            .ok_or_else(|| fatal("payload needs \"partition\" (string)"))?;
        let transfers = task
            .payload
            .get("transfers")
            .and_then(Json::as_array)
            .ok_or_else(|| fatal("payload needs \"transfers\" (array)"))?;
        let dataset = task
            .outputs
            .as_array()
            .and_then(|o| o.first())
            .and_then(Json::as_str)
            .unwrap_or("erc20.daily_volumes");

        // (day, token) -> (volume, count); BTreeMap keeps the output sorted.
        let mut sums: BTreeMap<(String, String), (u128, u64)> = BTreeMap::new();
        for (i, t) in transfers.iter().enumerate() {
            let ts = t.get("timestamp").and_then(Json::as_i64).ok_or_else(|| fatal(&format!("transfers[{i}]: bad timestamp")))?;
            let token = t.get("token").and_then(Json::as_str).ok_or_else(|| fatal(&format!("transfers[{i}]: bad token")))?;
            let value = t.get("value").and_then(Json::as_u128).ok_or_else(|| fatal(&format!("transfers[{i}]: bad value")))?;
            let e = sums.entry((day_of(ts), token.to_lowercase())).or_insert((0, 0));
            e.0 = e.0.checked_add(value).ok_or_else(|| fatal(&format!("transfers[{i}]: volume overflows u128")))?;
            e.1 += 1;
        }
        for ((day, token), (volume, count)) in &sums {
            out.row(
                dataset,
                partition,
                Json::object([
                    ("day", Json::from(day.as_str())),
                    ("token", Json::from(token.as_str())),
                    ("volume", Json::from(volume.to_string())),
                    ("transfers", Json::from(*count)),
                ]),
            );
        }
        out.event(dataset, partition, Json::object([("rows", Json::from(sums.len()))]));
        out.log("info", &format!("partition {partition}: {} transfers into {} daily rows", transfers.len(), sums.len()));
        Ok(Json::object([("rows", Json::from(sums.len())), ("transfers", Json::from(transfers.len()))]))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn days() {
        assert_eq!(super::day_of(0), "1970-01-01");
        assert_eq!(super::day_of(1_714_521_600), "2024-05-01");
        assert_eq!(super::day_of(951_782_400), "2000-02-29");
        assert_eq!(super::day_of(-1), "1969-12-31");
    }
}
