//! The loaded plugins described as one JSON document: what `adr plugins --json` prints and
//! what a service shows (`GET /api/v1/plugins` of `adr serve`).

use serde_json::{json, Value};

use crate::plugins::{Registry, SearchPath};

/// The search path, every loaded plugin with its detectors and their parameters, and
/// every file skipped with why.
pub fn plugins_json(registry: &Registry, search: &SearchPath) -> Value {
    json!({
        "search_path": search.dirs().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "plugins": registry.plugins().iter().map(|p| json!({
            "family": p.plugin.family(),
            "version": p.plugin.plugin_version(),
            "abi_version": p.plugin.abi_version(),
            "path": p.path.display().to_string(),
            "sha256": p.digest.to_string(),
            "detectors": p.detectors.iter().map(|d| json!({
                "name": d.name,
                "summary": d.summary,
                "doc": d.doc,
                "inputs": d.inputs.to_string(),
                "params": d.params.iter().map(|s| json!({
                    "name": s.name,
                    "type": s.kind.as_str(),
                    "default": s.default.to_string(),
                    "range": s.range_text(),
                    "choices": s.choices,
                    "doc": s.doc,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "skipped": registry.skipped().iter().map(|e| json!({
            "path": e.path().display().to_string(),
            "reason": e.to_string(),
        })).collect::<Vec<_>>(),
    })
}
