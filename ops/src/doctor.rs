//! `ops doctor`: is the platform healthy, and if not, what to do. The control plane runs the
//! checks that need the catalog and the servers (`GET /doctor`); `ops` adds what only a client
//! sees: the control plane answering, the public JWKS, each router's `/ready`. One line per
//! problem with its fix; exit code 0 when healthy, 1 with problems, 2 for bad usage.

use anyhow::Context as _;
use api_types::doctor::{CheckStatus, DoctorCheck, DoctorProblem, DoctorReport};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use reqwest::Method;

use crate::api::{Api, Target};

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Connections all router replicas together may hold to one Postgres server (the sum of
    /// their NEXACORE_POOL_BUDGET_PER_SERVER), checked against each server's max_connections.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub router_budget: Option<u32>,
    /// A router replica's URL whose `/ready` to check (repeat for each; default NEXACORE_ROUTER_URL).
    #[arg(long = "router", env = "NEXACORE_ROUTER_URL", value_delimiter = ',')]
    pub routers: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

/// Problems were found: exit code 1, after the report was printed.
#[derive(Debug)]
pub struct Unhealthy(pub usize);

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} problem(s) found", self.0)
    }
}

impl std::error::Error for Unhealthy {}

pub async fn run(args: DoctorArgs, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    // The routers and the JWKS are reached as the control plane is: with `stack.env`'s or
    // NEXACORE_TLS_CA_FILE's CA behind `ops up --tls`.
    let http = api.http();
    let timeout = std::time::Duration::from_secs(30);
    let mut client_checks = Vec::new();
    let mut client_problems = Vec::new();

    // The public JWKS, as routers fetch it.
    let jwks_url = format!("{}/.well-known/jwks.json", api.base());
    let keys = match http.get(&jwks_url).timeout(timeout).send().await {
        Ok(r) if r.status().is_success() => {
            r.json::<serde_json::Value>().await.ok().and_then(|v| v["keys"].as_array().map(Vec::len)).unwrap_or(0)
        }
        _ => 0,
    };
    push(
        &mut client_checks,
        &mut client_problems,
        "jwks",
        format!("{keys} key(s) at {jwks_url}"),
        (keys == 0).then(|| DoctorProblem {
            check: "jwks".into(),
            subject: jwks_url.clone(),
            problem: "no signing key is published: routers cannot verify any token".into(),
            fix: "check that routers' NEXACORE_JWKS_URL points here and the control plane serves it".into(),
        }),
    );
    for router in &args.routers {
        let url = format!("{}/ready", router.trim_end_matches('/'));
        let ready = http.get(&url).timeout(timeout).send().await.map(|r| r.status().as_u16());
        let problem = match ready {
            Ok(200) => None,
            Ok(status) => Some(format!("answers {status}")),
            Err(_) => Some("cannot be reached".to_owned()),
        };
        push(
            &mut client_checks,
            &mut client_problems,
            "router",
            format!("{url} ready"),
            problem.map(|problem| DoctorProblem {
                check: "router".into(),
                subject: router.clone(),
                problem: format!("/ready {problem}"),
                fix: "the router's log says why (catalog, JWKS or its Postgres servers unreachable)".into(),
            }),
        );
    }

    let mut path = "/doctor".to_owned();
    if let Some(budget) = args.router_budget {
        path.push_str(&format!("?router_budget={budget}"));
    }
    let answer = api.call(Method::GET, &path, None).await.context("the control plane's checks")?;
    let mut report: DoctorReport = serde_json::from_value(answer).context("reading the doctor report")?;
    report.checks.extend(client_checks);
    report.problems.extend(client_problems);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.problems.is_empty() {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(["check", "status", "detail"]);
        for c in &report.checks {
            let status = match c.status {
                CheckStatus::Ok => "ok",
                CheckStatus::Problem => "problem",
                CheckStatus::Skipped => "skipped",
            };
            table.add_row([c.name.as_str(), status, c.detail.as_str()]);
        }
        println!("{table}");
        println!("healthy");
    } else {
        for p in &report.problems {
            println!("{}", p.line());
        }
    }
    if report.problems.is_empty() { Ok(()) } else { Err(Unhealthy(report.problems.len()).into()) }
}

fn push(
    checks: &mut Vec<DoctorCheck>,
    problems: &mut Vec<DoctorProblem>,
    name: &str,
    detail: String,
    found: Option<DoctorProblem>,
) {
    let status = if found.is_some() { CheckStatus::Problem } else { CheckStatus::Ok };
    checks.push(DoctorCheck { name: name.into(), status, detail });
    problems.extend(found);
}
