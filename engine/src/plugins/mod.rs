//! Finding, loading and indexing detector plugins.
//!
//! Each plugin is a dynamic library built against `adr-sdk`. [`load`] opens one file and
//! checks it (abi_stable's header, the SDK ABI version, the layout of every type that
//! crosses the boundary); [`Registry`] loads a search path, keeps what loads, records one
//! readable line for each file it skips, and refuses two plugins that export the same
//! `family.detector`.
//!
//! abi_stable never unloads a library: a loaded plugin stays mapped until the process
//! exits. Loading a newer build means loading it from a new path and moving detectors to
//! it; the superseded library stays mapped (a bounded leak: one mapping per build).

mod load;
mod registry;
mod search_path;

pub use load::{load, load_build, LoadError, LoadedPlugin};
pub use registry::{LookupError, Registry, RegistryError, Stamp};
pub use search_path::SearchPath;
