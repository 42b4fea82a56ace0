//! The Terraform stack (terraform/): its Glue tables against the schemas the sink writes, the
//! offline checks (fmt, init from the mirrored provider, validate, checkov), the Lambda zip, and
//! an apply and destroy against moto_server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_schema::{DataType, TimeUnit};
use serde_json::{json, Value};
use sink::Table;

const TABLES_JSON: &str = "terraform/modules/orderstream/tables.json";

/// The Glue (Hive) type Athena reads a Parquet column of this Arrow type as.
fn glue_type(dt: &DataType) -> &'static str {
    match dt {
        DataType::Utf8 => "string",
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) if tz.as_ref() == "UTC" => "timestamp",
        DataType::Binary => "binary",
        other => panic!("no Glue type for {other}"),
    }
}

fn expected_tables() -> Value {
    let tables: serde_json::Map<String, Value> = Table::ALL
        .iter()
        .map(|t| {
            let columns: Vec<Value> = t
                .schema()
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": glue_type(f.data_type())}))
                .collect();
            (t.as_str().to_string(), json!({"columns": columns}))
        })
        .collect();
    Value::Object(tables)
}

/// The module's inputs and outputs in terraform/README.md are generated from variables.tf and
/// outputs.tf (scripts/terraform-docs, with python-hcl2): the README says what the code does.
#[test]
fn the_readme_lists_the_modules_inputs_and_outputs_as_the_code_declares_them() {
    let out = Command::new("python3")
        .arg(testkit::repo_root().join("scripts/terraform-docs"))
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {TOOLS_HINT}"));
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// terraform/modules/orderstream/tables.json (the Glue columns the module creates) equals the
/// schemas of `sink::Table`. `UPDATE_TERRAFORM_TABLES=1` rewrites the file from the schemas.
#[test]
fn the_glue_columns_equal_the_parquet_schemas_the_sink_writes() {
    let path = testkit::repo_root().join(TABLES_JSON);
    let expected = expected_tables();
    if std::env::var_os("UPDATE_TERRAFORM_TABLES").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
    }
    let actual: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        actual, expected,
        "{TABLES_JSON} differs from sink::Table::schema; regenerate it with \
         UPDATE_TERRAFORM_TABLES=1 cargo test --test terraform the_glue_columns"
    );
    // The partition keys are not in the files: the module adds dt and hr itself.
    for t in Table::ALL {
        assert!(t.schema().fields().iter().all(|f| f.name() != "dt" && f.name() != "hr"));
    }
}

const TOOLS_HINT: &str = "the Terraform checks need terraform on PATH and the hashicorp/aws provider (~> 5.100) in a \
                          filesystem mirror (TF_PROVIDER_MIRROR, or /opt/tf-plugins); checkov comes with \
                          tests/requirements.txt (bash scripts/test)";

/// The directory holding registry.terraform.io/hashicorp/aws/5.x of a filesystem mirror.
fn provider_mirror() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates: Vec<PathBuf> = std::env::var_os("TF_PROVIDER_MIRROR")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            ["/opt/tf-plugins", "/usr/local/share/terraform/plugins", "/usr/share/terraform/plugins"]
                .map(PathBuf::from),
        )
        .chain([Path::new(&home).join(".terraform.d/plugins")])
        .collect();
    candidates
        .into_iter()
        .find(|dir| {
            std::fs::read_dir(dir.join("registry.terraform.io/hashicorp/aws"))
                .map(|versions| versions.flatten().any(|v| v.file_name().to_string_lossy().starts_with("5.")))
                .unwrap_or(false)
        })
        .unwrap_or_else(|| panic!("no filesystem mirror of hashicorp/aws 5.x found: {TOOLS_HINT}"))
}

/// A copy of terraform/ in a temporary directory (init and apply write state there, not in the
/// repository), and a CLI configuration that installs the provider from the mirror only.
struct Workspace {
    dir: tempfile::TempDir,
    cli_config: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let copy =
            Command::new("cp").arg("-r").arg(testkit::repo_root().join("terraform")).arg(dir.path()).status().unwrap();
        assert!(copy.success());
        let cli_config = dir.path().join("cli.tfrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n",
                provider_mirror()
            ),
        )
        .unwrap();
        let ws = Workspace { dir, cli_config };
        ws.ok(&["init", "-input=false", "-no-color"]);
        ws
    }

    fn example(&self) -> PathBuf {
        self.dir.path().join("terraform/examples/complete")
    }

    fn module(&self) -> PathBuf {
        self.dir.path().join("terraform/modules/orderstream")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.example(), args)
    }

    fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new("terraform")
            .arg(format!("-chdir={}", dir.display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run terraform ({e}): {TOOLS_HINT}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "terraform {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The module's own `terraform test` (terraform/modules/orderstream/tests/*.tftest.hcl): plans
/// against a mocked provider that check its guard rails (variables refused as the functions
/// refuse them, the projection's range, the workgroup's limit, the roles' prefixes and keys).
#[test]
fn the_modules_plan_time_guard_rails_hold() {
    let ws = Workspace::new();
    let module = ws.module();
    let init = ws.run_in(&module, &["init", "-input=false", "-no-color"]);
    assert!(init.status.success(), "terraform init (module):\n{}", String::from_utf8_lossy(&init.stderr));
    let out = ws.run_in(&module, &["test", "-no-color"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "terraform test:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Success!") && stdout.contains("0 failed"), "{stdout}");
}

#[test]
fn terraform_is_formatted_valid_offline_and_passes_checkov() {
    let fmt = Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "-diff", "-no-color"])
        .arg(testkit::repo_root().join("terraform"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run terraform ({e}): {TOOLS_HINT}"));
    assert!(fmt.status.success(), "terraform fmt -check:\n{}", String::from_utf8_lossy(&fmt.stdout));
    let ws = Workspace::new();
    assert!(ws.ok(&["validate", "-no-color"]).contains("The configuration is valid"));

    let out = Command::new("checkov")
        .args(["--directory", ws.dir.path().join("terraform").to_str().unwrap()])
        .args(["--framework", "terraform", "--skip-download", "--output", "json"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run checkov ({e}): {TOOLS_HINT}"));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov's report ({e}):\n{}", String::from_utf8_lossy(&out.stderr)));
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .map(|a| a.iter().map(|c| format!("{} {} {}", c["check_id"], c["resource"], c["file_path"])).collect())
        .unwrap_or_default();
    assert_eq!(summary["failed"], 0, "checkov failures:\n{}", failed.join("\n"));
    assert!(summary["passed"].as_u64() > Some(100), "{summary}");
    // Every skip carries its reason in the code.
    for skipped in report["results"]["skipped_checks"].as_array().unwrap() {
        let reason = skipped["check_result"]["suppress_comment"].as_str().unwrap_or("");
        assert!(reason.len() > 20, "a skip without a reason: {skipped}");
    }
}

/// The zip of a function (`processor`, `publisher` or `scaler`) that scripts/build-lambda-zip built, and
/// its architecture (bash scripts/test builds the arm64 ones, or the x86_64 ones where the arm64
/// Rust target cannot be added).
fn lambda_zip(function: &str) -> (PathBuf, &'static str) {
    ["arm64", "x86_64"]
        .into_iter()
        .map(|arch| (testkit::repo_root().join(format!("target/lambda/{function}-{arch}.zip")), arch))
        .find(|(zip, _)| zip.is_file())
        .unwrap_or_else(|| {
            panic!("target/lambda/{function}-arm64.zip is missing: build it with bash scripts/build-lambda-zip")
        })
}

#[test]
fn the_lambda_zips_are_executable_bootstraps_for_amazon_linux_2023() {
    for function in ["processor", "publisher", "scaler"] {
        let (zip, arch) = lambda_zip(function);
        let out = Command::new("python3")
            .arg(testkit::repo_root().join("scripts/check_lambda_zip.py"))
            .arg(zip)
            .arg(arch)
            .output()
            .unwrap();
        assert!(out.status.success(), "{function}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("newest glibc symbol GLIBC_2."));
    }
}

/// What moto_server cannot do, kept behind a variable: Athena named queries cannot be deleted
/// there.
const MOTO_OFF: [&str; 1] = ["create_named_queries=false"];

/// The provider pointed at an emulator: every service at one endpoint, dummy credentials, no
/// retries of unimplemented actions (moto answers them 500), and the account id requested (Athena
/// workgroup ARNs need it). An override file, so the example itself stays as for AWS.
fn emulator_override(endpoint: &str) -> String {
    let services = [
        "apigateway",
        "athena",
        "cloudwatch",
        "cloudwatchlogs",
        "events",
        "glue",
        "iam",
        "kinesis",
        "kms",
        "lambda",
        "s3",
        "sns",
        "sqs",
        "sts",
        "wafv2",
    ];
    let endpoints: String = services.iter().map(|s| format!("    {s} = {endpoint:?}\n")).collect();
    format!(
        "provider \"aws\" {{\n  access_key                  = \"test\"\n  secret_key                  = \"test\"\n  \
         skip_credentials_validation = true\n  skip_metadata_api_check     = true\n  skip_requesting_account_id  = false\n  \
         s3_use_path_style           = true\n  max_retries                 = 2\n  endpoints {{\n{endpoints}  }}\n}}\n"
    )
}

#[test]
fn the_stack_applies_and_destroys_on_moto_server() {
    let moto = testkit::servers::start_moto();
    let ws = Workspace::new();
    std::fs::write(ws.example().join("emulator_override.tf"), emulator_override(&moto.endpoint())).unwrap();
    let (zip, arch) = lambda_zip("processor");
    let (publisher_zip, _) = lambda_zip("publisher");
    let (scaler_zip, _) = lambda_zip("scaler");
    let mut vars = vec![
        format!("architecture={arch}"),
        "region=us-east-1".to_string(),
        format!("lambda_zip={}", zip.display()),
        format!("publisher_zip={}", publisher_zip.display()),
        "publisher_groups=2".to_string(),
        "force_destroy=true".to_string(),
        "stream_mode=PROVISIONED".to_string(),
        "shard_count=2".to_string(),
        "shard_scaling=true".to_string(),
        format!("scaler_zip={}", scaler_zip.display()),
        "scaler_max_shards=16".to_string(),
        r#"shard_schedule=[{at="2026-12-04T18:45:00Z",target_shard_count=8}]"#.to_string(),
    ];
    vars.extend(MOTO_OFF.map(String::from));
    let var_args: Vec<String> = vars.iter().flat_map(|v| ["-var".to_string(), v.clone()]).collect();
    let with_vars =
        |cmd: &[&str]| -> Vec<String> { cmd.iter().map(|s| s.to_string()).chain(var_args.iter().cloned()).collect() };
    // The ingest API is switchable: without it, the plan has no API Gateway resource.
    let planned = |extra: &[&str]| -> Vec<String> {
        let mut args = with_vars(&["plan", "-input=false", "-no-color", "-out=switch.plan"]);
        args.extend(extra.iter().map(|s| s.to_string()));
        ws.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let plan: Value = serde_json::from_str(&ws.ok(&["show", "-json", "switch.plan"])).unwrap();
        plan["resource_changes"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap().to_string()).collect()
    };
    let with_api = planned(&[]);
    let without_api = planned(&["-var", "create_http_ingest=false"]);
    assert!(with_api.iter().any(|t| t == "aws_api_gateway_rest_api"), "{with_api:?}");
    assert!(without_api.iter().all(|t| !t.starts_with("aws_api_gateway")), "{without_api:?}");
    assert!(without_api.iter().any(|t| t == "aws_lambda_event_source_mapping"));
    // So is the scaler: without it, the processor and the two publishers.
    let functions = |types: &[String]| types.iter().filter(|t| *t == "aws_lambda_function").count();
    assert_eq!(functions(&with_api), 4, "{with_api:?}");
    assert_eq!(functions(&planned(&["-var", "shard_scaling=false"])), 3);

    let apply = with_vars(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    ws.ok(&apply.iter().map(String::as_str).collect::<Vec<_>>());

    let outputs: Value = serde_json::from_str(&ws.ok(&["output", "-json", "-no-color"])).unwrap();
    assert_eq!(outputs["stream_name"]["value"], "orderstream-events");
    assert_eq!(outputs["function_name"]["value"], "orderstream-processor");
    assert!(outputs["ingest_url"]["value"].as_str().unwrap().ends_with("/live/events"));
    assert!(outputs["orders_url"]["value"].as_str().unwrap().ends_with("/live/orders"));
    let mut alarms: Vec<&str> =
        outputs["alarm_names"]["value"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    alarms.sort_unstable();
    assert_eq!(
        alarms,
        [
            "orderstream-failed-records",
            "orderstream-iterator-age",
            "orderstream-on-failure-messages",
            "orderstream-processor-errors",
            "orderstream-publisher-0-errors",
            "orderstream-publisher-0-lag",
            "orderstream-publisher-0-missing-files",
            "orderstream-publisher-1-errors",
            "orderstream-publisher-1-lag",
            "orderstream-publisher-1-missing-files",
            "orderstream-scaler-errors",
        ]
    );
    assert_eq!(
        outputs["publisher_function_names"]["value"],
        serde_json::json!(["orderstream-publisher-0", "orderstream-publisher-1"])
    );
    let topic = outputs["alarm_topic_arn"]["value"].as_str().unwrap().to_string();
    assert!(topic.starts_with("arn:aws:sns:") && topic.ends_with(":orderstream-alarms"), "{topic}");
    // As applied: every alarm notifies the topic and says what to do; the mapping never gives up
    // by default; the function knows the stream's retention.
    let state: Value = serde_json::from_str(&ws.ok(&["show", "-json", "-no-color"])).unwrap();
    let resources: Vec<&Value> = state["values"]["root_module"]["child_modules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["resources"].as_array().unwrap())
        .collect();
    // The ingest stage is behind its web ACL, as applied.
    assert!(resources.iter().any(|r| r["type"] == "aws_wafv2_web_acl_association"));
    let methods: Vec<(&Value, &Value)> = resources
        .iter()
        .filter(|r| r["type"] == "aws_api_gateway_method" && r["values"]["http_method"] == "POST")
        .map(|r| (&r["name"], &r["values"]["authorization"]))
        .collect();
    assert_eq!(methods.len(), 2, "{methods:?}");
    assert!(methods.contains(&(&serde_json::json!("orders"), &serde_json::json!("AWS_IAM"))), "{methods:?}");
    let queue_url = outputs["on_failure_queue_url"]["value"].as_str().unwrap();
    for alarm in resources.iter().filter(|r| r["type"] == "aws_cloudwatch_metric_alarm") {
        let v = &alarm["values"];
        assert_eq!(v["alarm_actions"], serde_json::json!([topic]), "{}", v["alarm_name"]);
        let description = v["alarm_description"].as_str().unwrap();
        match v["alarm_name"].as_str().unwrap() {
            "orderstream-on-failure-messages" => {
                assert!(
                    description.contains(&format!("orderstream replay --queue-url {queue_url} --bucket ")),
                    "{description}"
                )
            }
            "orderstream-failed-records" => {
                assert!(description.contains("orderstream repair --stream"), "{description}")
            }
            "orderstream-publisher-0-lag" => {
                // No report from a publisher is itself an alarm.
                assert_eq!(v["treat_missing_data"], "breaching");
                assert_eq!(v["dimensions"], serde_json::json!({"PublisherGroup": "0"}));
            }
            _ => {}
        }
    }
    let mapping = &resources.iter().find(|r| r["type"] == "aws_lambda_event_source_mapping").unwrap()["values"];
    assert_eq!(
        (
            &mapping["maximum_retry_attempts"],
            &mapping["maximum_record_age_in_seconds"],
            &mapping["bisect_batch_on_function_error"]
        ),
        (&serde_json::json!(-1), &serde_json::json!(-1), &serde_json::json!(false))
    );
    let functions: Vec<&Value> =
        resources.iter().filter(|r| r["type"] == "aws_lambda_function").map(|r| &r["values"]).collect();
    let function = functions.iter().find(|f| f["function_name"] == "orderstream-processor").unwrap();
    assert_eq!(function["environment"][0]["variables"]["STREAM_RETENTION_HOURS"], "24");
    // One publisher a group, one invocation at a time, each told its group and the interval,
    // each on its own one-minute schedule.
    for g in ["0", "1"] {
        let p = functions.iter().find(|f| f["function_name"] == format!("orderstream-publisher-{g}")).unwrap();
        let env = &p["environment"][0]["variables"];
        assert_eq!(
            (&env["PUBLISHER_GROUPS"], &env["PUBLISHER_GROUP"], &env["PUBLISH_INTERVAL_SECONDS"]),
            (&serde_json::json!("2"), &serde_json::json!(g), &serde_json::json!("10"))
        );
        assert_eq!(p["reserved_concurrent_executions"], 1);
    }
    // The scaler: one step at a time, told its stream, limits and schedule.
    assert_eq!(outputs["scaler_function_name"]["value"], "orderstream-scaler");
    let scaler = functions.iter().find(|f| f["function_name"] == "orderstream-scaler").unwrap();
    let env = &scaler["environment"][0]["variables"];
    assert_eq!(
        (&env["STREAM_NAME"], &env["SCALER_MAX_SHARDS"], &scaler["reserved_concurrent_executions"]),
        (&serde_json::json!("orderstream-events"), &serde_json::json!("16"), &serde_json::json!(1))
    );
    let schedule = orderstream::scaler::parse_schedule(env["SCALER_SCHEDULE"].as_str().unwrap()).unwrap();
    assert_eq!(schedule.len(), 1);
    assert_eq!(schedule[0].target_shard_count, 8);
    let rules: Vec<&Value> = resources.iter().copied().filter(|r| r["type"] == "aws_cloudwatch_event_rule").collect();
    assert_eq!(rules.len(), 3);
    assert!(rules.iter().all(|r| r["values"]["schedule_expression"] == "rate(1 minute)"));
    // The Glue tables as created (read back by the provider) have the sink's columns.
    let created = &outputs["glue_tables"]["value"];
    let expected = expected_tables();
    for t in Table::ALL {
        assert_eq!(created[t.as_str()], expected[t.as_str()]["columns"], "{}", t.as_str());
    }

    let destroy = with_vars(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    let out = ws.ok(&destroy.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("Destroy complete!"), "{out}");
}

/// Renders the ingest API's mapping template (terraform/modules/orderstream/put_records.vtl) for
/// each body as API Gateway renders it (testkit/scripts/render_vtl.py; moto_server stores a
/// template but does not run it), for a request at `request_ms` with the given event-time window
/// (the beacon's; 0: the orders route's), to the PutRecords requests it sends Kinesis.
fn render_put_records(window_minutes: u32, request_ms: i64, bodies: &[Value]) -> Vec<Value> {
    let mut child = Command::new("python3")
        .arg(testkit::script("render_vtl.py"))
        .arg("--lines")
        .arg(testkit::repo_root().join("terraform/modules/orderstream/put_records.vtl"))
        .args(["req-7", &request_ms.to_string(), "stream_name=orderstream-events"])
        .arg(format!("event_time_window_minutes={window_minutes}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {TOOLS_HINT}"));
    let input: String = bodies.iter().map(|b| format!("{b}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "render_vtl.py: {}", String::from_utf8_lossy(&out.stderr));
    let requests: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}):\n{l}")))
        .collect();
    assert_eq!(requests.len(), bodies.len());
    requests
}

/// A browser's {"events": [...]} becomes one valid PutRecords request, each event its own record,
/// keyed by its session whatever characters the session id holds; on both routes.
#[test]
fn the_ingest_mapping_turns_a_browser_post_into_one_put_records_request() {
    let now = model::now_ms();
    let time = model::format_millis(now);
    let events = json!([
        {"event_id": "e-1", "event_type": "page_view", "session_id": "s-1001", "page": "/é", "event_time": time},
        {"event_id": "e-2", "event_type": "page_view"},
        {"event_id": "e-3", "session_id": "it's \"quoted\" \\ é 💡", "event_time": 17},
        {"event_id": "e-4", "session_id": "s".repeat(65), "event_time": "yesterday"},
        {"event_id": "e-5", "session_id": 42, "nested": {"a": [1, 2]}, "event_time": {"at": time}},
    ]);
    for window in [1440, 0] {
        let request = &render_put_records(window, now, &[json!({"events": events})])[0];
        assert_eq!(request["StreamName"], "orderstream-events", "window {window}");
        let records = request["Records"].as_array().unwrap();
        assert_eq!(records.len(), 5);
        let b64 = |v: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
        };
        let keys: Vec<String> = records.iter().map(|r| String::from_utf8(b64(&r["PartitionKey"])).unwrap()).collect();
        assert_eq!(keys, ["s-1001", "req-7", "it's \"quoted\" \\ é 💡", "req-7", "42"]);
        for (record, event) in records.iter().zip(events.as_array().unwrap()) {
            let data: Value = serde_json::from_slice(&b64(&record["Data"])).unwrap();
            assert_eq!(&data, event, "each record's data is its event");
            assert!(record["PartitionKey"].as_str().unwrap().len() <= 256, "Kinesis's partition key limit");
        }
    }
}

/// The beacon's template refuses a request holding an event time more than its window from the
/// request, to the minute, and exactly when the processor's own parser (chrono) puts the time
/// there: every UTC offset from -23:59 to +23:59, lower-case `t`/`z`, fractions, across midnight
/// and month and year ends, the window's edges; a refused request names a stream Kinesis
/// refuses (400: nothing of it is written). Malformed times pass (the processor quarantines
/// them), and the orders route checks none.
#[test]
fn the_beacon_refuses_event_times_outside_its_window() {
    use chrono::{DateTime, Duration, FixedOffset, Utc};
    let window = 1440i64;
    let stream_pattern = |s: &str| {
        !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    // Requests at the edges of a day, a month, a leap day and a year, and within a minute.
    let requests =
        ["2026-12-01T12:30:07.250Z", "2026-12-31T23:59:59.999Z", "2028-02-29T00:00:00Z", "2027-03-01T00:00:09.999Z"];
    let offsets = [-(23 * 60 + 59), -12 * 60, -9 * 60 - 30, 0, 5 * 60 + 45, 14 * 60, 23 * 60 + 59];
    let mut cases = 0;
    for request in requests {
        let request_ms = model::parse_rfc3339(request).unwrap().millis;
        let request_minute = request_ms.div_euclid(60_000);
        let mut bodies = Vec::new();
        let mut expected = Vec::new();
        // Minutes from the request: the window's edges exactly, and a spread across four days.
        let mut deltas: Vec<i64> = vec![-window - 1, -window, window, window + 1, 0];
        deltas.extend((-2 * window - 37..=2 * window + 37).step_by(13));
        for (i, delta) in deltas.iter().enumerate() {
            let offset = offsets[i % offsets.len()];
            let at: DateTime<Utc> = DateTime::from_timestamp_millis(request_minute * 60_000).unwrap()
                + Duration::minutes(*delta)
                + Duration::milliseconds((i as i64 * 7_919) % 60_000);
            let local = at.with_timezone(&FixedOffset::east_opt(offset * 60).unwrap());
            let mut text = match i % 3 {
                0 => local.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                1 => local.format("%Y-%m-%dt%H:%M:%S%.9f%:z").to_string(),
                _ => local.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
            };
            if offset == 0 && i % 2 == 0 {
                text = text.replace("+00:00", if i % 4 == 0 { "Z" } else { "z" });
            }
            let parsed = model::parse_rfc3339(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let apart = parsed.millis.div_euclid(60_000) - request_minute;
            expected.push((text.clone(), apart.abs() > window));
            bodies.push(json!({"events": [
                {"event_id": "ok", "event_type": "page_view", "event_time": request},
                {"event_id": "x", "event_type": "page_view", "event_time": text},
            ]}));
        }
        for (request, (text, refused)) in render_put_records(1440, request_ms, &bodies).iter().zip(&expected) {
            let stream = request["StreamName"].as_str().unwrap();
            if *refused {
                assert!(!stream_pattern(stream), "{text}: refused, so the stream name must be one Kinesis refuses");
                assert_eq!(
                    stream,
                    "refused: events[1].event_time is more than 1440 minutes from the time of the request"
                );
            } else {
                assert_eq!(stream, "orderstream-events", "{text} is within the window");
            }
            cases += 1;
        }
    }
    assert!(cases > 1000, "{cases}");

    // Malformed or far times: the beacon refuses only well-formed ones; the orders route none.
    let now = model::now_ms();
    let far = ["2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z"];
    let malformed = ["2026-12-01 12:00:00Z", "2026-12-01T12:00:00", "2026-12-01T12:00:00.Z", "1764000000", ""];
    let bodies: Vec<Value> = far
        .iter()
        .chain(&malformed)
        .map(|t| json!({"events": [{"event_id": "x", "event_type": "page_view", "event_time": t}]}))
        .collect();
    let beacon = render_put_records(1440, now, &bodies);
    let orders = render_put_records(0, now, &bodies);
    for (i, (b, o)) in beacon.iter().zip(&orders).enumerate() {
        assert_eq!(o["StreamName"], "orderstream-events", "the orders route checks no time");
        let refused = b["StreamName"] != "orderstream-events";
        assert_eq!(refused, i < far.len(), "{}", bodies[i]);
    }
    assert!(stream_pattern("orderstream-events"));
}

/// Every EMF metric the CloudWatch dashboard and alarms name is one the functions write
/// (`processor::metrics`, `publisher::metrics`): a renamed metric fails here, not silently on
/// AWS.
#[test]
fn the_dashboard_and_alarms_name_only_metrics_the_functions_write() {
    let tf = std::fs::read_to_string(testkit::repo_root().join("terraform/modules/orderstream/cloudwatch.tf")).unwrap();
    let written: Vec<&str> = processor::metrics::SUMMARY_METRICS
        .iter()
        .map(|(name, _)| *name)
        .chain(processor::metrics::DIMENSIONED_METRICS.iter().map(|(name, _, _)| *name))
        .chain(publisher::metrics::ROUND_METRICS.iter().map(|(name, _)| *name))
        .chain(orderstream::scaler::STEP_METRICS)
        .collect();
    let mut named = Vec::new();
    for (marker, end) in
        [("[local.emf, \"", "\""), ("namespace   = local.emf, metric = \"", "\""), ("MetricName=\\\"", "\\\"")]
    {
        for part in tf.split(marker).skip(1) {
            named.push(part.split(end).next().unwrap().to_string());
        }
    }
    assert!(named.len() >= 8, "{named:?}");
    for name in &named {
        assert!(written.contains(&name.as_str()), "cloudwatch.tf names {name}, which no function writes");
    }
    assert_eq!(processor::metrics::NAMESPACE, "Orderstream");
    assert!(tf.contains("emf         = \"Orderstream\""));
}
