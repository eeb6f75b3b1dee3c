//! The `b2c-token` binary against the fake tenant: each subcommand's request, stdout, stderr
//! and exit code for success, rejection, transport failure and bad usage.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{Password, Scopes};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a clean environment plus `env`, feeding `stdin`.
async fn b2c_token(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    b2c_token_under(&[], args, env, stdin).await
}

/// [`b2c_token`] run by `wrapper` (a program and its arguments, e.g. valgrind) when not empty.
async fn b2c_token_under(wrapper: &[&str], args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let binary = env!("CARGO_BIN_EXE_b2c-token");
    let (program, wrapper_args) = wrapper.split_first().map_or((binary, &[][..]), |(p, a)| (*p, a));
    let mut command = Command::new(program);
    command
        .args(wrapper_args)
        .args(if wrapper.is_empty() { None } else { Some(binary) })
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn tenant_env(tenant: &FakeTenant, policy: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("B2C_TENANT", defaults::TENANT.to_owned()),
        ("B2C_POLICY", policy.to_owned()),
        ("B2C_DOMAIN", tenant.base_url().to_string()),
    ]
}

/// The variables of client-credentials runs that share the file cache in `dir`.
fn file_cache_env(tenant: &FakeTenant, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut env = tenant_env(tenant, defaults::SIGNIN_POLICY);
    env.extend([
        ("B2C_CLIENT_ID", defaults::CONFIDENTIAL_CLIENT_ID.to_owned()),
        ("B2C_CLIENT_SECRET", defaults::CLIENT_SECRET.to_owned()),
        ("B2C_SCOPE", tenant.api_default_scope()),
        ("B2C_TOKEN_CACHE", "1".to_owned()),
        ("B2C_TOKEN_CACHE_DIR", dir.to_str().unwrap().to_owned()),
    ]);
    env
}

fn with<'a>(base: &'a [(&'static str, String)], more: &[(&'static str, &'a str)]) -> Vec<(&'static str, &'a str)> {
    base.iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(more.iter().copied())
        .collect()
}

#[tokio::test]
async fn password_prints_the_access_token_alone() {
    let tenant = FakeTenant::start().await.unwrap();
    let base = tenant_env(&tenant, defaults::ROPC_POLICY);
    let env = with(
        &base,
        &[
            ("B2C_CLIENT_ID", defaults::PUBLIC_CLIENT_ID),
            ("B2C_PASSWORD", defaults::PASSWORD),
        ],
    );
    let run = b2c_token(&["password", "--username", defaults::USERNAME], &env, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim_end();
    assert!(token.starts_with("eyJ") && token.split('.').count() == 3, "{token}");
    assert_eq!(run.stdout.lines().count(), 1);

    let requests = tenant.requests();
    let request = &requests[0];
    assert_eq!(request.path(), "/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token");
    let form: Vec<(&str, &str)> = request.form().iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let scope = format!("openid {} offline_access", defaults::PUBLIC_CLIENT_ID);
    assert_eq!(
        form,
        [
            ("grant_type", "password"),
            ("username", defaults::USERNAME),
            ("password", defaults::PASSWORD),
            ("scope", scope.as_str()),
            ("client_id", defaults::PUBLIC_CLIENT_ID),
        ]
    );
}

#[tokio::test]
async fn password_from_stdin_and_query_form() {
    let tenant = FakeTenant::start().await.unwrap();
    let base = tenant_env(&tenant, defaults::ROPC_POLICY);
    let env = with(&base, &[("B2C_CLIENT_ID", defaults::PUBLIC_CLIENT_ID)]);
    let run = b2c_token(
        &[
            "password",
            "--username",
            defaults::USERNAME,
            "--password-stdin",
            "--query-policy",
        ],
        &env,
        Some("Passw0rd!\n"),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(tenant.requests()[0].query(), Some("p=B2C_1_ropc"));
}

#[tokio::test]
async fn client_credentials_json() {
    let tenant = FakeTenant::start().await.unwrap();
    let base = tenant_env(&tenant, defaults::SIGNIN_POLICY);
    let scope = tenant.api_default_scope();
    let env = with(
        &base,
        &[
            ("B2C_CLIENT_ID", defaults::CONFIDENTIAL_CLIENT_ID),
            ("B2C_CLIENT_SECRET", defaults::CLIENT_SECRET),
        ],
    );
    let run = b2c_token(&["client-credentials", "--scope", &scope, "--json"], &env, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["token_type"], "Bearer");
    assert!(json["access_token"].as_str().unwrap().starts_with("eyJ"));
    assert!(json["expires_in"].as_u64().unwrap() > 3500);
    assert_eq!(json["resource"], defaults::API_CLIENT_ID);
    let request = &tenant.requests()[0];
    assert_eq!(request.form_value("grant_type"), Some("client_credentials"));
    assert_eq!(request.form_value("client_secret"), Some(defaults::CLIENT_SECRET));
    assert_eq!(request.form_value("scope"), Some(scope.as_str()));
}

#[tokio::test]
async fn refresh_from_stdin_with_decoded_claims() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = support::fake_public(&tenant, defaults::ROPC_POLICY).build().unwrap();
    let signed_in = client
        .acquire_token_by_password(defaults::USERNAME, &Password::new(defaults::PASSWORD), &Scopes::empty())
        .await
        .unwrap();
    let refresh = signed_in.refresh_token().unwrap().expose_secret().to_owned();

    let base = tenant_env(&tenant, defaults::ROPC_POLICY);
    let env = with(&base, &[("B2C_CLIENT_ID", defaults::PUBLIC_CLIENT_ID)]);
    let run = b2c_token(
        &["refresh", "--refresh-token-stdin", "--decode"],
        &env,
        Some(&format!("{refresh}\n")),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let claims: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(claims["tfp"], defaults::ROPC_POLICY);
    assert!(run.stderr.contains("without verifying the signature"));
    let request = tenant.requests().into_iter().last().unwrap();
    assert_eq!(request.form_value("grant_type"), Some("refresh_token"));
    assert_eq!(request.form_value("refresh_token"), Some(refresh.as_str()));
    assert_eq!(request.form_value("client_secret"), None);
}

#[tokio::test]
async fn a_rejection_exits_3_with_code_correlation_and_fix() {
    let tenant = FakeTenant::start().await.unwrap();
    let base = tenant_env(&tenant, defaults::ROPC_POLICY);
    let env = with(
        &base,
        &[
            ("B2C_CLIENT_ID", defaults::PUBLIC_CLIENT_ID),
            ("B2C_PASSWORD", "wrong-password-xyz"),
        ],
    );
    let run = b2c_token(&["password", "--username", defaults::USERNAME], &env, None).await;
    assert_eq!(run.code, 3);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("code: AADB2C90225"), "{}", run.stderr);
    assert!(run.stderr.contains("correlation ID: "), "{}", run.stderr);
    assert!(run.stderr.contains("fix: "), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong-password-xyz"));
}

#[tokio::test]
async fn transport_failure_exits_4() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/token");
    let env = [
        ("B2C_CLIENT_ID", "x"),
        ("B2C_CLIENT_SECRET", "s"),
        ("B2C_TOKEN_URL", url.as_str()),
    ];
    let run = b2c_token(&["client-credentials", "--scope", "api/.default"], &env, None).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("could not connect"), "{}", run.stderr);
}

#[tokio::test]
async fn bad_usage_and_configuration_exit_2() {
    // No client ID.
    let run = b2c_token(
        &["client-credentials"],
        &[("B2C_TOKEN_URL", "https://idp.example.com/token")],
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    // Plain http to a remote host.
    let env = [
        ("B2C_CLIENT_ID", "x"),
        ("B2C_CLIENT_SECRET", "s"),
        ("B2C_TOKEN_URL", "http://idp.example.com/token"),
    ];
    let run = b2c_token(&["client-credentials", "--scope", "a/.default"], &env, None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("https"), "{}", run.stderr);
    // A missing secret says where secrets come from.
    let env = [
        ("B2C_CLIENT_ID", "x"),
        ("B2C_TOKEN_URL", "https://idp.example.com/token"),
    ];
    let run = b2c_token(&["client-credentials"], &env, None).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("B2C_CLIENT_SECRET"), "{}", run.stderr);
    // Unknown subcommand.
    assert_eq!(b2c_token(&["implicit"], &[], None).await.code, 2);
}

#[tokio::test]
async fn secrets_cannot_be_passed_as_arguments() {
    // There is no flag that takes a password, secret or refresh token: ps and shell history
    // would show it. The binary refuses them as unknown arguments.
    for args in [
        &["password", "--username", "u", "--password", "hunter2"][..],
        &["client-credentials", "--client-secret", "hunter2"][..],
        &["refresh", "--refresh-token", "hunter2"][..],
    ] {
        let run = b2c_token(
            args,
            &[
                ("B2C_TOKEN_URL", "https://idp.example.com/token"),
                ("B2C_CLIENT_ID", "x"),
            ],
            None,
        )
        .await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("hunter2") || run.stderr.contains("unexpected argument"),
            "{}",
            run.stderr
        );
    }
    let help = b2c_token(&["password", "--help"], &[], None).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--password-stdin") && help.stdout.contains("B2C_PASSWORD"));
    assert!(!help.stdout.contains("--password <"), "{}", help.stdout);
}

/// One rule for flags and variables: a flag beats any variable, and `B2C_TOKEN_URL` beats the
/// tenant/policy variables. Every pairing of the two ways to name an authority is tried; the
/// URL form tells which one was used (path form from tenant + policy, `?p=` from the URL).
#[tokio::test]
async fn flags_beat_variables_and_the_token_url_variable_beats_tenant_variables() {
    let tenant = FakeTenant::start().await.unwrap();
    let query_url = tenant
        .authority_builder(defaults::ROPC_POLICY)
        .policy_form(b2c_token::authority::PolicyForm::Query)
        .build()
        .unwrap()
        .token_endpoint()
        .to_string();
    let base = tenant.base_url().to_string();
    let path_form = "/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token";
    let query_form = "/contoso.onmicrosoft.com/oauth2/v2.0/token";
    let common = [
        ("B2C_CLIENT_ID", defaults::PUBLIC_CLIENT_ID),
        ("B2C_PASSWORD", defaults::PASSWORD),
    ];
    let tenant_vars = [
        ("B2C_TENANT", defaults::TENANT),
        ("B2C_POLICY", defaults::ROPC_POLICY),
        ("B2C_DOMAIN", base.as_str()),
    ];
    let tenant_flags = [
        "--tenant",
        defaults::TENANT,
        "--policy",
        defaults::ROPC_POLICY,
        "--domain",
        base.as_str(),
    ];
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "--token-url flag over tenant variables",
            vec!["--token-url", &query_url],
            tenant_vars.to_vec(),
            query_form,
        ),
        (
            "tenant flags over B2C_TOKEN_URL",
            tenant_flags.to_vec(),
            vec![("B2C_TOKEN_URL", &query_url)],
            path_form,
        ),
        (
            "B2C_TOKEN_URL over tenant variables",
            vec![],
            [tenant_vars.as_slice(), &[("B2C_TOKEN_URL", &query_url)]].concat(),
            query_form,
        ),
        (
            "--policy flag over B2C_POLICY",
            vec!["--policy", defaults::ROPC_POLICY],
            vec![
                ("B2C_TENANT", defaults::TENANT),
                ("B2C_POLICY", "B2C_1_nope"),
                ("B2C_DOMAIN", &base),
            ],
            path_form,
        ),
        (
            "--query-policy flag over B2C_POLICY_FORM",
            vec!["--query-policy"],
            [tenant_vars.as_slice(), &[("B2C_POLICY_FORM", "tfp")]].concat(),
            query_form,
        ),
    ];
    for (case, flags, vars, expected_path) in cases {
        tenant.reset();
        let args = [flags.as_slice(), &["password", "--username", defaults::USERNAME]].concat();
        let env = [vars.as_slice(), &common].concat();
        let run = b2c_token(&args, &env, None).await;
        assert_eq!(run.code, 0, "{case}: {}", run.stderr);
        let requests = tenant.requests();
        assert_eq!(requests.len(), 1, "{case}");
        assert_eq!(requests[0].path(), expected_path, "{case}");
    }
}

/// A private temporary directory for a token cache.
fn cache_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("b2c-token-cli-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Issue 12: `--cache` makes 20 parallel runs share one request, and later runs reuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_cache_makes_parallel_runs_share_one_request() {
    let tenant = FakeTenant::start().await.unwrap();
    let dir = cache_dir("parallel");
    let owned = file_cache_env(&tenant, &dir);
    let env = with(&owned, &[]);
    let runs: Vec<_> = (0..20)
        .map(|_| b2c_token(&["client-credentials"], &env, None))
        .collect();
    let results = futures_join_all(runs).await;
    let first = results[0].stdout.clone();
    for run in &results {
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout == first, "every run printed the one token");
    }
    assert_eq!(tenant.total_token_requests(), 1, "20 parallel runs, one request");
    let again = b2c_token(&["client-credentials"], &env, None).await;
    assert!(again.stdout == first);
    assert_eq!(tenant.total_token_requests(), 1);

    let list = b2c_token(&["cache", "list"], &env, None).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout.lines().count(), 1, "{}", list.stdout);
    assert!(!list.stdout.contains(defaults::CONFIDENTIAL_CLIENT_ID) && !list.stdout.contains("eyJ"));

    // A corrupt file is ignored and rewritten by the next good token.
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "token") {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let after_corruption = b2c_token(&["client-credentials"], &env, None).await;
    assert_eq!(after_corruption.code, 0, "{}", after_corruption.stderr);
    assert_eq!(tenant.total_token_requests(), 2);
    let reused = b2c_token(&["client-credentials"], &env, None).await;
    assert!(reused.stdout == after_corruption.stdout);
    assert_eq!(tenant.total_token_requests(), 2, "the rewritten file is read");

    let cleared = b2c_token(&["cache", "clear"], &env, None).await;
    assert_eq!(cleared.stdout.trim(), "1 cached token(s) deleted");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cache directory other users can read is refused, not used.
#[cfg(unix)]
#[tokio::test]
async fn the_file_cache_refuses_a_directory_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let tenant = FakeTenant::start().await.unwrap();
    let dir = cache_dir("loose");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = tenant_env(&tenant, defaults::ROPC_POLICY);
    let dir_text = dir.to_str().unwrap().to_owned();
    let env = with(
        &base,
        &[
            ("B2C_CLIENT_ID", defaults::PUBLIC_CLIENT_ID),
            ("B2C_PASSWORD", defaults::PASSWORD),
            ("B2C_TOKEN_CACHE_DIR", &dir_text),
        ],
    );
    let run = b2c_token(&["--cache", "password", "--username", defaults::USERNAME], &env, None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("chmod 700"), "{}", run.stderr);
    assert_eq!(tenant.total_token_requests(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futures.len());
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    // Poll them together: each runs a child process, so they overlap in time.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

/// `--authority external-id|entra` (or `B2C_AUTHORITY`): the tenant's authority without a
/// policy; Azure's `AZURE_TENANT_ID` names the tenant; ROPC on External ID is refused unsent.
#[tokio::test]
async fn the_authority_flag_reaches_external_id_and_entra() {
    use b2c_token::authority::AuthorityKind;
    for (kind, name) in [
        (AuthorityKind::ExternalId, "external-id"),
        (AuthorityKind::Entra, "entra"),
    ] {
        let tenant = FakeTenant::builder().kind(kind).start().await.unwrap();
        let base = tenant.base_url().to_string();
        let scope = tenant.api_default_scope();
        let env = [
            ("AZURE_TENANT_ID", defaults::TENANT),
            ("B2C_CLIENT_ID", defaults::CONFIDENTIAL_CLIENT_ID),
            ("B2C_CLIENT_SECRET", defaults::CLIENT_SECRET),
        ];
        let run = b2c_token(
            &[
                "client-credentials",
                "--authority",
                name,
                "--domain",
                &base,
                "--scope",
                &scope,
            ],
            &env,
            None,
        )
        .await;
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert!(run.stdout.starts_with("eyJ"), "{name}");
        let request = &tenant.requests()[0];
        assert_eq!(request.path(), "/contoso.onmicrosoft.com/oauth2/v2.0/token", "{name}");
        let env = [
            ("B2C_AUTHORITY", name),
            ("B2C_TENANT", defaults::TENANT),
            ("B2C_DOMAIN", base.as_str()),
            ("B2C_CLIENT_ID", defaults::PUBLIC_CLIENT_ID),
            ("B2C_PASSWORD", defaults::PASSWORD),
        ];
        let run = b2c_token(
            &[
                "password",
                "--username",
                defaults::USERNAME,
                "--scope",
                &tenant.api_scope("read"),
            ],
            &env,
            None,
        )
        .await;
        if kind == AuthorityKind::ExternalId {
            assert_eq!(run.code, 2, "{}", run.stderr);
            assert!(run.stderr.contains("native authentication"), "{}", run.stderr);
            assert_eq!(tenant.total_token_requests(), 1, "nothing sent for ROPC");
        } else {
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
    }
}

/// Azure's own variables name the client and its secret when the B2C ones are not set, as
/// in `ClientBuilder::from_env` (a workload identity webhook sets `AZURE_CLIENT_ID`); the B2C
/// ones win when both are.
#[tokio::test]
async fn azure_client_variables_stand_in_for_the_b2c_ones() {
    let tenant = FakeTenant::start().await.unwrap();
    let base = tenant_env(&tenant, defaults::SIGNIN_POLICY);
    let scope = tenant.api_default_scope();
    let azure = with(
        &base,
        &[
            ("AZURE_CLIENT_ID", defaults::CONFIDENTIAL_CLIENT_ID),
            ("AZURE_CLIENT_SECRET", defaults::CLIENT_SECRET),
        ],
    );
    let run = b2c_token(&["client-credentials", "--scope", &scope], &azure, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("eyJ"));
    let both = with(
        &base,
        &[
            ("B2C_CLIENT_ID", defaults::CONFIDENTIAL_CLIENT_ID),
            ("B2C_CLIENT_SECRET", defaults::CLIENT_SECRET),
            ("AZURE_CLIENT_ID", "99999999-9999-9999-9999-999999999999"),
            ("AZURE_CLIENT_SECRET", "not-this-one"),
        ],
    );
    let run = b2c_token(&["client-credentials", "--scope", &scope], &both, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent = tenant.requests();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        assert_eq!(request.form_value("client_id"), Some(defaults::CONFIDENTIAL_CLIENT_ID));
        assert_eq!(request.form_value("client_secret"), Some(defaults::CLIENT_SECRET));
    }
    let missing = b2c_token(&["client-credentials", "--scope", &scope], &with(&base, &[]), None).await;
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("AZURE_CLIENT_ID"), "{}", missing.stderr);
}

/// The binary runs under valgrind (people profile and leak-check their daemons with it):
/// the cache reads the clock on every hit, and a clock read that goes straight to the
/// kernel's vDSO crashed valgrind's process, which maps no vDSO. A cached client-credentials
/// token (the cache installs it, reading the clock) under memcheck: exit 0, no error.
#[tokio::test]
async fn the_cli_runs_under_valgrind() {
    // Only where valgrind cannot run at all (macOS) may it be left out, and only when asked;
    // scripts/test installs it everywhere else, and a missing valgrind fails this test.
    if std::env::var_os("B2C_TOKEN_SKIP_VALGRIND").is_some() {
        eprintln!("B2C_TOKEN_SKIP_VALGRIND is set: not running the CLI under valgrind");
        return;
    }
    assert!(
        std::process::Command::new("valgrind").arg("--version").output().is_ok(),
        "valgrind is needed for this test (scripts/test installs it)"
    );
    let tenant = FakeTenant::start().await.unwrap();
    let dir = cache_dir("valgrind");
    let env = file_cache_env(&tenant, &dir);
    let run = b2c_token_under(
        &["valgrind", "--error-exitcode=99", "--quiet"],
        &["client-credentials"],
        &with(&env, &[]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "under valgrind: {}", run.stderr);
    assert!(run.stdout.starts_with("eyJ"));
    assert_eq!(tenant.total_token_requests(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The token file `--cache` wrote in `dir` (there is one).
fn token_file(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "token"))
        .expect("a token file")
}

/// Issue 25, item 3: the file cache cannot be made to hang, lie or leak. Each planted thing
/// at a cache path costs one request at most and a few seconds at most (before: a FIFO hung
/// the run for ever, a 1 GiB file was read whole, a dangling link at the lock cost 20 s, and
/// `cache clear` left a crashed writer's temporary file, which holds a token).
#[tokio::test]
async fn planted_files_in_the_cache_neither_hang_nor_lie() {
    use std::os::unix::fs::PermissionsExt as _;
    let tenant = FakeTenant::start().await.unwrap();
    let dir = cache_dir("planted");
    let env = file_cache_env(&tenant, &dir);
    let run = || async { b2c_token(&["client-credentials"], &with(&env, &[]), None).await };
    assert_eq!(run().await.code, 0);
    let token = token_file(&dir);
    let lock = token.with_extension("lock");
    let started = std::time::Instant::now();

    // A FIFO where the token was.
    std::fs::remove_file(&token).unwrap();
    assert!(Command::new("mkfifo").arg(&token).status().await.unwrap().success());
    let fifo = tokio::time::timeout(Duration::from_secs(10), run())
        .await
        .expect("a FIFO hung the run");
    assert_eq!(fifo.code, 0, "{}", fifo.stderr);
    std::fs::remove_file(&token).unwrap();

    // A 1 GiB (sparse) file: a miss, not a read.
    let huge = std::fs::File::create(&token).unwrap();
    huge.set_len(1 << 30).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(run().await.code, 0);

    // A dangling symbolic link at the lock path: no lock at all.
    let _ = std::fs::remove_file(&token);
    std::os::unix::fs::symlink(dir.join("nowhere"), &lock).unwrap();
    assert_eq!(run().await.code, 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "planted files cost {:?}",
        started.elapsed()
    );
    assert_eq!(
        tenant.total_token_requests(),
        4,
        "one request per planted file, then the cache"
    );

    // A crashed writer's temporary file is cleared with the rest.
    std::fs::write(dir.join(".00000000deadbeef.tmp"), "a token").unwrap();
    let clear = b2c_token(&["cache", "clear"], &with(&env, &[]), None).await;
    assert_eq!(clear.code, 0, "{}", clear.stderr);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "namespace")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 25, item 3: files and directories another user owns are not trusted, even by root
/// (CI runs as root; a second uid, 65534, is given the files with chown). Before: a root run
/// accepted another user's 0700 directory and adopted the token file that user planted.
#[tokio::test]
async fn another_users_cache_directory_and_files_are_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: giving files to another uid needs root (CI runs this as root)");
        return;
    }
    let tenant = FakeTenant::start().await.unwrap();
    let dir = cache_dir("owners");
    let env = file_cache_env(&tenant, &dir);
    let run = || async { b2c_token(&["client-credentials"], &with(&env, &[]), None).await };
    assert_eq!(run().await.code, 0);
    let token = token_file(&dir);

    // A token file of another user's in our directory: ignored, a request made.
    std::os::unix::fs::chown(&token, Some(65534), Some(65534)).unwrap();
    assert_eq!(run().await.code, 0);
    assert_eq!(tenant.total_token_requests(), 2, "adopted another user's token file");

    // The directory itself owned by another user (mode 0700): refused outright.
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let refused = run().await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("owned by uid 65534"), "{}", refused.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
