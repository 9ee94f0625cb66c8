//! The Docker files say what the service reads (issue 22): every variable the compose
//! file gives the app is one `adr serve` knows and documents, and together they point it
//! at the compose file's own PostgreSQL and Redis, on the ports those publish; the image
//! builds every plugin family, runs as a non-root user and listens where it says.
//! (No Docker daemon here: the image itself is not built by the tests.)

use std::collections::BTreeMap;

use adr_server::config::{Config, LogFormat};
use adr_tests::workspace;

fn compose() -> serde_json::Value {
    let text = std::fs::read_to_string(workspace().join("deploy/docker-compose.yml")).unwrap();
    serde_saphyr::from_str(&text).expect("the compose file is YAML")
}

fn dockerfile() -> String {
    std::fs::read_to_string(workspace().join("deploy/Dockerfile")).unwrap()
}

/// A service's `environment`, as name → text.
fn environment(service: &serde_json::Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .expect("environment as a map")
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// The container side of a `"host:container"` port mapping.
fn container_ports(service: &serde_json::Value) -> Vec<u16> {
    service["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    let p = p.as_str().expect("ports as text");
                    p.rsplit(':').next().unwrap().parse().unwrap()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The variables the Dockerfile sets with `ENV`.
fn image_environment(dockerfile: &str) -> BTreeMap<String, String> {
    let joined = dockerfile.replace("\\\n", " ");
    let mut vars = BTreeMap::new();
    for line in joined.lines().filter(|l| l.starts_with("ENV ")) {
        for pair in line["ENV ".len()..].split_whitespace() {
            let (k, v) = pair.split_once('=').expect("ENV NAME=VALUE");
            vars.insert(k.to_owned(), v.to_owned());
        }
    }
    vars
}

#[test]
fn the_compose_file_configures_the_service_against_its_own_postgres_and_redis() {
    let compose = compose();
    let services = &compose["services"];
    for name in ["app", "postgres", "redis"] {
        assert!(services[name].is_object(), "service {name}");
    }
    let app = environment(&services["app"]);
    // The image's defaults, then the compose file's, as the container sees them.
    let mut seen = image_environment(&dockerfile());
    seen.extend(app.clone());
    let config = Config::load(None, &|name| seen.get(name).cloned())
        .unwrap_or_else(|e| panic!("the compose environment configures adr serve: {e}"));
    config.check().unwrap();

    let database = config.database.as_ref().expect("PostgreSQL configured");
    let postgres = environment(&services["postgres"]);
    assert_eq!(database.host, "postgres");
    assert_eq!(database.name, postgres["POSTGRES_DB"]);
    assert_eq!(database.user, postgres["POSTGRES_USER"]);
    assert_eq!(database.password, postgres["POSTGRES_PASSWORD"]);
    assert!(container_ports(&services["postgres"]).contains(&database.port));

    let redis = config.redis.as_ref().expect("Redis configured");
    assert_eq!(redis.host, "redis");
    assert!(container_ports(&services["redis"]).contains(&redis.port));

    assert_eq!(
        config.api.host, "0.0.0.0",
        "reachable from outside the container"
    );
    assert_eq!(container_ports(&services["app"]), [config.api.port]);
    assert_eq!(config.monitoring.log_format, LogFormat::Json);
    assert_eq!(
        config.rules,
        [std::path::PathBuf::from("/etc/adr/rules/market_stress.adr")]
    );

    // Every variable given is documented where operators look.
    let readme = std::fs::read_to_string(workspace().join("engine/server/README.md")).unwrap();
    for name in seen.keys() {
        assert!(readme.contains(name.as_str()), "{name} is documented");
    }
    let depends = services["app"]["depends_on"].as_object().unwrap();
    assert!(depends.contains_key("postgres") && depends.contains_key("redis"));
}

#[test]
fn the_image_builds_every_plugin_family_and_runs_unprivileged() {
    let dockerfile = dockerfile();
    assert!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")) >= 2,
        "multi-stage"
    );
    for entry in std::fs::read_dir(workspace().join("plugins")).unwrap() {
        let family = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            dockerfile.contains(&format!("-p adr-plugin-{family}")),
            "the image builds plugins/{family}"
        );
    }
    assert!(dockerfile.contains("--locked"), "built from Cargo.lock");
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert!(!matches!(user.trim(), "root" | "0"), "{user}");
    let env = image_environment(&dockerfile);
    let exposed: u16 = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(env["API_PORT"].parse::<u16>().unwrap(), exposed);
    // The rules it runs read the example data beside them.
    assert!(env["ADR_RULES"].starts_with("/etc/adr/rules/"));
    assert!(dockerfile.contains("COPY rules/ /etc/adr/rules/"));
    assert!(dockerfile.contains("COPY examples/ /etc/adr/examples/"));
    // The build toolchain is at least the workspace's rust-version.
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let minimum = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version");
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .expect("a rust build stage");
    let version = |v: &str| -> (u32, u32) {
        let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    assert!(version(image) >= version(minimum), "{image} vs {minimum}");
}
