//! Shared by the producer's tests: moto_server, a Kinesis client for it, and reading a stream.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;

use bytes::Bytes;

#[path = "../../../tests/support/servers.rs"]
pub mod servers;

pub fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kinesis::config::Credentials::new("test", "test", None, None, "tests"))
            .build(),
    )
}

/// Every record of every shard, from the start.
pub async fn read_stream(client: &aws_sdk_kinesis::Client, stream: &str) -> BTreeMap<String, Vec<(String, Bytes)>> {
    let mut out = BTreeMap::new();
    let shards = client.list_shards().stream_name(stream).send().await.unwrap();
    for shard in shards.shards() {
        let mut it = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let mut records = Vec::new();
        loop {
            let page = client.get_records().shard_iterator(&it).limit(10_000).send().await.unwrap();
            if page.records().is_empty() {
                break;
            }
            records.extend(page.records().iter().map(|r| {
                (r.partition_key().unwrap_or_default().to_string(), Bytes::copy_from_slice(r.data().as_ref()))
            }));
            it = page.next_shard_iterator().unwrap().to_string();
        }
        out.insert(shard.shard_id().to_string(), records);
    }
    out
}
