//! Records Lambda gave up on, replayed from its on-failure queue: moto_server's Kinesis, SQS and
//! S3 on 127.0.0.1, the real `orderstream replay` binary, and Lambda's own on-failure record.

use std::process::{Command, Output};

use orderstream::input;
use orderstream::lambda::on_failure::OnFailureRecord;
use orderstream::sources::kinesis::read_range;
use processor::Processor;
use sink::store::{ObjectStore, S3Store};
use sink::Table;
use testkit::{read_table, s};

/// (event_id, sequence number) of the events, and the sequence numbers of the quarantine.
async fn contents(store: &dyn ObjectStore, prefix: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut events: Vec<_> = read_table(store, prefix, Table::Events)
        .await
        .into_iter()
        .map(|(_, r)| (s(&r, "event_id"), s(&r, "sequence_number")))
        .collect();
    events.sort();
    let mut q: Vec<_> =
        read_table(store, prefix, Table::Quarantine).await.into_iter().map(|(_, r)| s(&r, "sequence_number")).collect();
    q.sort();
    testkit::aggregates_match_details(store, prefix).await;
    (events, q)
}

/// Lambda's on-failure record for records `start..=end` of a shard (its documented shape).
fn lambda_record(shard: &str, start: &str, end: &str, size: usize) -> String {
    serde_json::json!({
        "requestContext": {"requestId": "c9b8fa9f-5a7f-4e5a-af9c-0c604cde93a5",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:orderstream-processor",
            "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-23T13:06:00.000Z",
        "KinesisBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": start,
            "endSequenceNumber": end,
            "approximateArrivalOfFirstRecord": "2026-11-23T13:05:00.000Z",
            "approximateArrivalOfLastRecord": "2026-11-23T13:05:00.000Z",
            "batchSize": size,
            "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
        }
    })
    .to_string()
}

fn replay(moto: &testkit::servers::Server, queue_url: &str) -> Output {
    testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &moto.endpoint())
        .args(["replay", "--queue-url", queue_url, "--bucket", "lake", "--prefix", "p/"])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_lambda_gave_up_on_is_replayed_from_the_queue_exactly_once() {
    let moto = testkit::servers::start_moto();
    let k = testkit::kinesis_client(&moto.endpoint());
    let q = testkit::sqs_client(&moto.endpoint());
    let s3 = testkit::s3_client(&moto.endpoint());
    testkit::create_bucket(&s3, "lake").await;
    k.create_stream().stream_name("orders").shard_count(1).send().await.unwrap();
    let queue_url = q.create_queue().queue_name("on-failure").send().await.unwrap().queue_url.unwrap();

    // The 56 contract samples in the stream, one request at a time (moto's sequence numbers are
    // not safe for concurrent puts), then read back as the mapping reads them.
    let samples = input::sample_records("orders", "shardId-000000000000").unwrap();
    for r in &samples {
        k.put_record()
            .stream_name("orders")
            .partition_key(&r.meta.partition_key)
            .data(aws_sdk_kinesis::primitives::Blob::new(r.data.clone()))
            .send()
            .await
            .unwrap();
    }
    let shard = "shardId-000000000000";
    let first = k
        .get_records()
        .shard_iterator(
            k.get_shard_iterator()
                .stream_name("orders")
                .shard_id(shard)
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator
                .unwrap(),
        )
        .limit(1)
        .send()
        .await
        .unwrap()
        .records()[0]
        .sequence_number()
        .to_string();
    let records = read_range(&k, "orders", shard, &first, &"9".repeat(60)).await.unwrap();
    assert_eq!(records.len(), 56);

    // Lambda committed 0..20 and 40..56 and gave up on 20..40, which the high-water mark of
    // the later commit now covers.
    let lambda = Processor::new(S3Store::new(s3.clone(), "lake"), "p/");
    for range in [0..20, 40..56] {
        let r = lambda.process(records[range].to_vec()).await;
        assert_eq!(r.error, None);
    }
    let (start, end) = (&records[20].meta.sequence_number, &records[39].meta.sequence_number);
    let message = lambda_record(shard, start, end, 20);
    assert_eq!(OnFailureRecord::parse(&message).unwrap().batch.batch_size, Some(20));
    q.send_message().queue_url(&queue_url).message_body(&message).send().await.unwrap();

    let out = replay(&moto, &queue_url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("1 batches from") && stdout.contains("1 replayed, 0 failed; 20 records"), "{stdout}");
    let replay_peak = testkit::reliability::printed_peak_kib(&stdout);
    // The same as all 56 records in one batch, from scratch. (Some samples are valid or not
    // depending on their arrival, which is now, in moto's stream.)
    let store = S3Store::new(s3.clone(), "lake");
    assert_eq!(Processor::new(S3Store::new(s3.clone(), "lake"), "ref/").process(records.clone()).await.error, None);
    testkit::publish(&store, "ref/").await;
    let want = contents(&store, "ref/").await;
    assert_eq!(want.0.len() + want.1.len(), 56);
    let got = contents(&store, "p/").await;
    assert_eq!(got, want);
    let (lost_e, dup_e) = testkit::reliability::compare(&want.0, &got.0);
    let (lost_q, dup_q) = testkit::reliability::compare(&want.1, &got.1);
    testkit::reliability::record(&testkit::reliability::Row {
        order: 9,
        scenario: "batch given up by Lambda, replayed from its on-failure queue".into(),
        injected: "records 20-39 of 56 skipped (their on-failure message in SQS), 0-19 and 40-55 committed; `orderstream replay --queue-url`, twice".into(),
        records_in: 56,
        events_out: got.0.len() as u64,
        quarantined_out: got.1.len() as u64,
        lost: lost_e + lost_q,
        duplicated: dup_e + dup_q,
        peak_kib: replay_peak,
        process: "orderstream replay".into(),
    });
    let report = testkit::python_report(&["--s3-endpoint", &moto.endpoint(), "--bucket", "lake", "--prefix", "p/"]);
    assert_eq!(report["events"].as_array().unwrap().len(), want.0.len());
    assert_eq!(report["quarantine"].as_array().unwrap().len(), want.1.len());

    // The message was deleted; the same batch replayed a second time changes nothing.
    let left = q.receive_message().queue_url(&queue_url).wait_time_seconds(1).send().await.unwrap();
    assert!(left.messages().is_empty());
    q.send_message().queue_url(&queue_url).message_body(&message).send().await.unwrap();
    let out = replay(&moto, &queue_url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("0 events") && stdout.contains("20 already committed"), "{stdout}");
    assert_eq!(contents(&store, "p/").await, want);

    // Records no longer in the stream cannot be replayed: a one-line error, a non-zero exit,
    // and the message stays in the queue.
    let gone = lambda_record(shard, "999999", "1000000", 2);
    q.send_message().queue_url(&queue_url).message_body(&gone).send().await.unwrap();
    let out = replay(&moto, &queue_url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("orders shardId-000000000000 999999..1000000") && stderr.contains("left to replay again"),
        "{stderr}"
    );
    let attrs = q
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let in_flight = attrs.attributes().unwrap()
        [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .clone();
    assert_eq!(in_flight, "1");
}

#[test]
fn replay_explains_its_mistakes_in_one_line() {
    let bin = env!("CARGO_BIN_EXE_orderstream");
    let out = Command::new(bin).args(["replay"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--queue-url <QUEUE_URL>|--on-failure-dir"));
    let out = Command::new(bin).args(["replay", "--on-failure-dir", "/nonexistent/x"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "error: --on-failure-dir /nonexistent/x: no such folder");
    assert!(!out.status.success());
}
