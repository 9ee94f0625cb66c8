//! Finding, loading and indexing detector plugins: the host side of the stable-ABI
//! boundary (`adr-sdk` is the plugin side).
//!
//! Each plugin is a dynamic library built against `adr-sdk`. [`load`] opens one file and
//! checks it (abi_stable's header, the SDK ABI version, the layout of every type that
//! crosses the boundary); [`Registry`] loads a search path, keeps what loads, records one
//! readable line for each file it skips, and refuses two plugins that export the same
//! `family.detector`.
//!
//! Every library is mapped from a private copy of its contents, never from the plugin
//! folder, so nothing written there can crash a running engine (`private_copy`).
//! abi_stable never unloads a library: a loaded plugin stays mapped until the process
//! exits. Loading a newer build means mapping it too and moving detectors to it; the
//! superseded library stays mapped (a bounded leak: one mapping per build). [`rescan`]
//! turns a registry and the plugin files now on disk into the next registry.

mod file_identity;
mod load;
mod private_copy;
mod registry;
pub mod rescan;
mod search_path;

pub use file_identity::FileIdentity;
pub use load::{load, LoadError, LoadedPlugin};
pub(crate) use load::{map, read};
pub use private_copy::Digest;
pub use registry::{LookupError, Registry, RegistryError, Stamp};
pub use search_path::SearchPath;
