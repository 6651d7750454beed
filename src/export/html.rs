//! The HTML report: one self-contained page (uPlot and the data inline; opens from disk, no
//! network), from `report::ReportData`.

use super::Exporter;
use crate::report::ReportData;

/// uPlot 1.6.32 from its npm package, MIT licence (`assets/uplot/`).
const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../../assets/uplot/LICENSE");
const REPORT_JS: &str = include_str!("../../assets/report.js");
const REPORT_CSS: &str = include_str!("../../assets/report.css");

/// `ReportData` → `report.html`.
pub struct HtmlReport;

impl Exporter<ReportData> for HtmlReport {
    fn render(&self, data: &ReportData) -> anyhow::Result<Vec<u8>> {
        // `<` escaped, so no text in the data (an error message, a path) can end the script element.
        let json = serde_json::to_string(data)?.replace('<', "\\u003c");
        let mut page = String::with_capacity(UPLOT_JS.len() + json.len() + 16 * 1024);
        page.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        page.push_str("<title>llmvolley report</title>\n<style>\n");
        page.push_str(UPLOT_CSS);
        page.push('\n');
        page.push_str(REPORT_CSS);
        page.push_str("</style>\n");
        // Installed first: an error anywhere below is shown on the page (and seen by tests).
        page.push_str(
            "<script>window.__errors = []; window.__reportError = function (m) { window.__errors.push(m); var e = document.getElementById('errors'); if (e) e.textContent += m + '\\n'; }; window.addEventListener('error', function (e) { window.__reportError('script error: ' + e.message); }); window.addEventListener('unhandledrejection', function (e) { window.__reportError('unhandled rejection: ' + e.reason); }); var consoleError = console.error; console.error = function () { window.__reportError('console.error: ' + Array.prototype.join.call(arguments, ' ')); consoleError.apply(console, arguments); };</script>\n",
        );
        page.push_str("</head><body>\n<div id=\"errors\"></div>\n<main id=\"app\"></main>\n");
        page.push_str("<!-- uPlot 1.6.32 (https://github.com/leeoniya/uPlot), licence:\n");
        page.push_str(&UPLOT_LICENSE.replace("--", "- -"));
        page.push_str("-->\n<script>");
        page.push_str(UPLOT_JS);
        page.push_str("</script>\n<script type=\"application/json\" id=\"data\">");
        page.push_str(&json);
        page.push_str("</script>\n<script>");
        page.push_str(REPORT_JS);
        page.push_str("</script>\n</body></html>\n");
        Ok(page.into_bytes())
    }
}
