//! Reporting: the results model written to `results.json` (`results`), the terminal
//! summary printed after a run (`summary`), and the HTML comparison report (`page` model →
//! `charts` → `html`).

pub mod charts;
pub mod html;
pub mod page;
mod results;
mod summary;

pub use html::{render as render_html, write as write_html, ReportError};
pub use results::*;
pub use summary::render_summary;
