//! Scratch measurement (not kept).
use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use herald_core::{
    CampaignId, Outcome, PastSend, PhoneNumber, Purpose, RecipientId, Region, TimeZone,
};
use herald_store::*;
use herald_store_sqlite::SqliteStores;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = Instant::now();
    for _ in 0..10000 {
        tokio::task::spawn_blocking(|| ()).await.unwrap();
    }
    println!(
        "spawn_blocking: {:.1} us",
        a.elapsed().as_secs_f64() * 1e6 / 10000.0
    );
    let a = Instant::now();
    for i in 0..10000 {
        std::hint::black_box(
            PhoneNumber::parse(&format!("+49151{}", 10_000_000 + i), None).unwrap(),
        );
    }
    println!(
        "phone parse: {:.1} us",
        a.elapsed().as_secs_f64() * 1e6 / 10000.0
    );
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(100_000);
    let dir = std::env::var("DIR").unwrap_or("/tmp".into());
    let path = std::path::PathBuf::from(format!("{dir}/measure-{n}.db"));
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", path.display()));
    }
    let stores = SqliteStores::open(&path).unwrap();
    let run = herald_store::conformance::new_run("promo");
    let now: DateTime<Utc> = DateTime::from_timestamp(1_795_773_600, 0).unwrap();
    stores.runs().create_run(&run, now).await.unwrap();
    let tzs = [
        "Europe/Berlin",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "America/New_York",
        "Africa/Lagos",
    ];
    let deliveries: Vec<NewDelivery> = (0..n)
        .map(|i| {
            let id = RecipientId::parse(&format!("cust-{i}")).unwrap();
            NewDelivery {
                key: DeliveryKey {
                    run: run.run.clone(),
                    recipient: id.clone(),
                },
                recipient: Some(RecipientSnapshot {
                    id,
                    phone: PhoneNumber::parse(&format!("+49151{}", 10_000_000 + i), None).unwrap(),
                    zone: Some(TimeZone::parse(tzs[i % 5]).unwrap()),
                    locale: Some("de".into()),
                    country: Some(Region::parse("DE").unwrap()),
                    attributes: BTreeMap::from([
                        ("first_name".into(), "Alexandra".into()),
                        ("order_ref".into(), format!("ORD-7F3K2-{i}")),
                        ("expires".into(), "2025-12-01".into()),
                    ]),
                    line: i as u64 + 2,
                }),
                scheduled_at: Some(now),
                expires_at: Some(now + chrono::TimeDelta::hours(6)),
                initial: Initial::Queued {
                    due_at: now - chrono::TimeDelta::seconds((n - i) as i64 / 100),
                },
            }
        })
        .collect();
    let t0 = Instant::now();
    for chunk in deliveries.chunks(1000) {
        stores.deliveries().insert_batch(chunk).await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("enqueue {n}: {:.0} jobs/s", n as f64 / secs);
    if std::env::var("ENQ_ONLY").is_ok() {
        return;
    }
    drop(stores);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(c);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!("bytes/job: {}", bytes / n as u64);
    let stores = SqliteStores::open(&path).unwrap();
    let d = stores.deliveries();
    let ph = PhoneNumber::parse("+4915110000001", None).unwrap();
    let a = Instant::now();
    for _ in 0..10000 {
        std::hint::black_box(stores.consents().events("whatsapp", &ph).await.unwrap());
    }
    println!(
        "events loop: {:.1} us",
        a.elapsed().as_secs_f64() * 1e6 / 10000.0
    );
    let a = Instant::now();
    for _ in 0..10000 {
        std::hint::black_box(d.history(&ph, now).await.unwrap());
    }
    println!(
        "history loop: {:.1} us",
        a.elapsed().as_secs_f64() * 1e6 / 10000.0
    );
    let a = Instant::now();
    for _ in 0..10000 {
        std::hint::black_box(stores.runs().run(&run.run).await.unwrap());
    }
    println!(
        "run loop: {:.1} us",
        a.elapsed().as_secs_f64() * 1e6 / 10000.0
    );
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in [
            "SELECT occurred_at, kind, scope, source, proof FROM consents WHERE channel = ?1 AND phone = ?2 ORDER BY occurred_at",
            "SELECT at, campaign, purpose, delivery FROM sends WHERE phone = ?2 AND at >= ?1 ORDER BY at, delivery",
            "SELECT id FROM runs WHERE run_id = ?1 AND ?2 IS NOT NULL",
        ] {
            let a = Instant::now();
            for i in 0..10000 {
                let mut st = c.prepare_cached(sql).unwrap();
                let n = st
                    .query_map((i as i64, "+4915110000001"), |_| Ok(()))
                    .unwrap()
                    .count();
                std::hint::black_box(n);
            }
            println!(
                "raw {:.1} us: {}",
                a.elapsed().as_secs_f64() * 1e6 / 10000.0,
                &sql[..40]
            );
        }
    }
    let t0 = Instant::now();
    let c = stores.deliveries().counts(&run.run).await.unwrap();
    println!("counts: {:?} in {:?}", c.queued, t0.elapsed());
    let t0 = Instant::now();
    let batch = d.due(now, 100).await.unwrap();
    println!("due(100) at start: {} in {:?}", batch.len(), t0.elapsed());
    if std::env::var("NO_DRAIN").is_ok() {
        for s in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", path.display()));
        }
        return;
    }
    let campaign = CampaignId::parse("promo").unwrap();
    let t0 = Instant::now();
    let mut done = 0;
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    let mut acc = [std::time::Duration::ZERO; 5];
    loop {
        let a = Instant::now();
        let batch = d.due(now, 100).await.unwrap();
        acc[0] += a.elapsed();
        if batch.is_empty() {
            break;
        }
        for job in batch {
            let a = Instant::now();
            let _ = stores
                .consents()
                .events("whatsapp", &job.recipient.phone)
                .await
                .unwrap();
            acc[1] += a.elapsed();
            let a = Instant::now();
            let _ = d
                .history(&job.recipient.phone, now - chrono::TimeDelta::days(7))
                .await
                .unwrap();
            acc[2] += a.elapsed();
            let send = PastSend {
                at: now,
                campaign: campaign.clone(),
                purpose: Purpose::Marketing,
            };
            let a = Instant::now();
            assert!(d.begin_send(&job.key, &send, now).await.unwrap());
            acc[3] += a.elapsed();
            let a = Instant::now();
            d.finish(&job.key, &sent, now).await.unwrap();
            acc[4] += a.elapsed();
            done += 1;
        }
    }
    for (name, t) in ["due", "events", "history", "begin_send", "finish"]
        .iter()
        .zip(acc)
    {
        println!(
            "  {name}: {:.1} us/job",
            t.as_secs_f64() * 1e6 / done as f64
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "drain {done}: {:.0} jobs/s ({:.1} us/job)",
        done as f64 / secs,
        secs * 1e6 / done as f64
    );
    if std::env::var("CONC").is_ok() {
        let stores = std::sync::Arc::new(stores);
        // reset: requeue everything
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("UPDATE deliveries SET state='queued'; DELETE FROM sends;")
            .unwrap();
        drop(c);
        let t0 = Instant::now();
        let mut done = 0;
        loop {
            let batch = stores.deliveries().due(now, 100).await.unwrap();
            if batch.is_empty() {
                break;
            }
            let mut set = tokio::task::JoinSet::new();
            for job in batch {
                let stores = stores.clone();
                let campaign = campaign.clone();
                set.spawn(async move {
                    let d = stores.deliveries();
                    let sent = Terminal {
                        outcome: Outcome::Sent,
                        detail: None,
                    };
                    let _ = stores
                        .consents()
                        .events("whatsapp", &job.recipient.phone)
                        .await
                        .unwrap();
                    let _ = d
                        .history(&job.recipient.phone, now - chrono::TimeDelta::days(7))
                        .await
                        .unwrap();
                    let send = PastSend {
                        at: now,
                        campaign,
                        purpose: Purpose::Marketing,
                    };
                    assert!(d.begin_send(&job.key, &send, now).await.unwrap());
                    d.finish(&job.key, &sent, now).await.unwrap();
                });
                done += 1;
            }
            set.join_all().await;
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "concurrent drain {done}: {:.0} jobs/s ({:.1} us/job)",
            done as f64 / secs,
            secs * 1e6 / done as f64
        );
        return;
    }
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in [
            "SELECT occurred_at, kind, scope, source, proof FROM consents WHERE channel = ?1 AND phone = ?2 ORDER BY occurred_at",
            "SELECT at, campaign, purpose, delivery FROM sends WHERE phone = ?2 AND at >= ?1 ORDER BY at, delivery",
            "SELECT id FROM runs WHERE run_id = ?1 AND ?2 IS NOT NULL",
        ] {
            let a = Instant::now();
            for i in 0..10000 {
                let mut st = c.prepare_cached(sql).unwrap();
                let n = st
                    .query_map((i as i64, "+4915110000001"), |_| Ok(()))
                    .unwrap()
                    .count();
                std::hint::black_box(n);
            }
            println!(
                "raw {:.1} us: {}",
                a.elapsed().as_secs_f64() * 1e6 / 10000.0,
                &sql[..40]
            );
        }
    }
    let t0 = Instant::now();
    let c = stores.deliveries().counts(&run.run).await.unwrap();
    println!("counts: sent {} in {:?}", c.sent, t0.elapsed());
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", path.display()));
    }
}
