//! The no-op proxy-wasm filter of `make bench` (configuration F): every callback continues.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(R) });
}}
struct R;
impl Context for R {}
impl RootContext for R {
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> { Some(Box::new(H)) }
    fn get_type(&self) -> Option<ContextType> { Some(ContextType::HttpContext) }
}
struct H;
impl Context for H {}
impl HttpContext for H {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action { Action::Continue }
}
