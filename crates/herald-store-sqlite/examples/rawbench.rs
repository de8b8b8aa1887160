//! scratch
use std::time::Instant;
fn main() {
    for round in 0..3 {
        for drop_trigger in [false, true] {
            let path = "/tmp/rawbench.db";
            for s in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{path}{s}")); }
            drop(herald_store_sqlite::SqliteStores::open(std::path::Path::new(path)).unwrap());
            let mut c = rusqlite::Connection::open(path).unwrap();
            c.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; PRAGMA foreign_keys=ON;").unwrap();
            if drop_trigger { c.execute_batch("DROP TRIGGER deliveries_counted_on_insert").unwrap(); }
            c.execute_batch("INSERT INTO runs (run_id, campaign, purpose, source, at_least_once, created_at) VALUES ('a@b','a','marketing','',0,0);").unwrap();
            let rows: Vec<(String, i64, String, String)> = (0..100000).map(|i| (format!("cust-{i}"), i as i64, format!("+49151{}", 10000000+i), format!(r#"{{"first_name":"Alexandra","order_ref":"ORD-7F3K2-{i}","expires":"2025-12-01"}}"#))).collect();
            let a = Instant::now();
            for chunk in rows.chunks(1000) {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
                {
                    let mut st = tx.prepare_cached("INSERT INTO deliveries (run, recipient, state, due_at, scheduled_at, expires_at, phone, zone, locale, country, attributes, line) VALUES (1, ?1, 'queued', ?2, ?2, ?2, ?3, 'Europe/Berlin', 'de', 'DE', ?4, ?2) ON CONFLICT (run, recipient) DO NOTHING").unwrap();
                    for (r, i, p, j) in chunk { st.execute((r, 1_795_000_000 + i, p, j)).unwrap(); }
                }
                tx.commit().unwrap();
            }
            println!("round {round} no_trigger={drop_trigger}: {:.0} rows/s", 100000.0 / a.elapsed().as_secs_f64());
        }
    }
}
