//! The one macro line that turns a crate of detectors into a plugin.

/// Exports detector types as an adr plugin of one family.
///
/// Put it once in the plugin crate's `lib.rs` (crate type `cdylib`), naming the family
/// and every detector type: `export_detectors!(family = "statistical", detectors = [ZScore,
/// Mad])`. The [crate docs](crate) show a complete plugin.
///
/// It exports the library header the engine's loader looks for, and a hidden
/// `__adr_plugin_module()` function for hosts that link the plugin in-process.
/// Each detector type must implement [`Detector`](crate::Detector) and `Debug`.
#[macro_export]
macro_rules! export_detectors {
    (family = $family:literal, detectors = [$($det:ty),+ $(,)?] $(,)?) => {
        /// The plugin's root module (cached; the loader calls it once per library).
        #[doc(hidden)]
        pub fn __adr_plugin_module() -> $crate::__private::PluginRef {
            use $crate::__private::abi_stable::{
                prefix_type::PrefixTypeTrait,
                std_types::{RResult, RStr, RString, RVec},
            };
            use $crate::__private::{FfiDetectorInfo, FfiError, FfiParam, DetectorBox};

            extern "C" fn detectors() -> RResult<RVec<FfiDetectorInfo>, FfiError> {
                $crate::__private::guard_extern("describing the detectors", || {
                    ::std::result::Result::Ok(::std::vec![
                        $($crate::__private::describe_detector::<$det>()),+
                    ].into())
                })
            }

            extern "C" fn create(
                name: RStr<'_>,
                params: RVec<FfiParam>,
                inputs: RVec<RString>,
            ) -> RResult<DetectorBox, FfiError> {
                $crate::__private::guard_extern("building a detector", || {
                    $(
                        if name.as_str() == <$det as $crate::Detector>::NAME {
                            return $crate::__private::create_detector::<$det>(&params, &inputs);
                        }
                    )+
                    let known = [$(<$det as $crate::Detector>::NAME),+];
                    ::std::result::Result::Err($crate::DetectorError::new(
                        $crate::ErrorKind::UnknownDetector,
                        ::std::format!(
                            "family `{}` has no detector `{}`; it has {}",
                            $family, name, known.join(", ")
                        ),
                    ))
                })
            }

            static MODULE: ::std::sync::OnceLock<$crate::__private::PluginRef> = ::std::sync::OnceLock::new();
            *MODULE.get_or_init(|| {
                $crate::__private::PluginModule {
                    family: RStr::from_str($family),
                    plugin_version: RStr::from_str(::std::env!("CARGO_PKG_VERSION")),
                    abi_version: RStr::from_str($crate::ABI_VERSION),
                    detectors,
                    create,
                }
                .leak_into_prefix()
            })
        }

        #[doc(hidden)]
        #[export_name = $crate::__root_loader_symbol!()]
        pub static __ADR_PLUGIN_LIB_HEADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn construct() -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(__adr_plugin_module)
            }
            // SAFETY: `construct` returns the `PluginRef` built by `__adr_plugin_module`,
            // which is the module type named here, and its layout is checked at load.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<$crate::__private::PluginRef>(
                    construct,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
