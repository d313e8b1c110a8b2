//! A flow as an SVG diagram for the admin pages: blocks in rows by their distance from the
//! start, each branch an arrow labelled with its name; arrows that lead back up (a menu asked
//! again) curve round the side. Plain SVG with text escaped, no script.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use crate::flow::{Block, Flow};

const WIDTH: i64 = 230;
const HEIGHT: i64 = 58;
const GAP_X: i64 = 40;
const GAP_Y: i64 = 76;
const MARGIN: i64 = 24;

/// The block's kind as shown, and its fill colour.
fn kind(block: &Block) -> (&'static str, &'static str) {
    match block {
        Block::CheckHours { .. } => ("check hours", "#fff4d6"),
        Block::LookUpCustomer { .. } => ("look up customer", "#e6f0ff"),
        Block::TransferToAssignedAgent { .. } => ("assigned agent", "#e3f5e1"),
        Block::TransferToQueue { .. } => ("transfer to queue", "#e3f5e1"),
        Block::CheckStaffing { .. } => ("check staffing", "#fff4d6"),
        Block::Say { .. } => ("say", "#f1ecfa"),
        Block::GetInput { .. } => ("get input", "#f1ecfa"),
        Block::SetAttribute { .. } => ("set attribute", "#f3f3f3"),
        Block::SetRecording { .. } => ("set recording", "#f3f3f3"),
        Block::SetDisconnectFlow { .. } => ("set disconnect flow", "#f3f3f3"),
        Block::InvokeWebhook { .. } => ("webhook", "#e6f0ff"),
        Block::Disconnect {} => ("disconnect", "#fbe3e3"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// At most `limit` characters, with an ellipsis when cut.
fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Rows: blocks by their distance from the start, in the order they are reached; blocks that
/// cannot be reached go in a last row, so that nothing of a flow is hidden.
fn rows(flow: &Flow) -> Vec<Vec<&str>> {
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order = Vec::new();
    let mut queue = VecDeque::new();
    if flow.blocks.contains_key(&flow.start) {
        depth.insert(flow.start.as_str(), 0);
        queue.push_back(flow.start.as_str());
    }
    while let Some(name) = queue.pop_front() {
        order.push(name);
        let here = depth[name];
        if let Some(block) = flow.blocks.get(name) {
            for (_, target) in block.branches() {
                if flow.blocks.contains_key(target) && !depth.contains_key(target) {
                    depth.insert(target, here + 1);
                    queue.push_back(target);
                }
            }
        }
    }
    let last = depth.values().max().map_or(0, |deepest| deepest + 1);
    for name in flow.blocks.keys() {
        if !depth.contains_key(name.as_str()) {
            depth.insert(name.as_str(), last);
            order.push(name.as_str());
        }
    }
    let mut rows: Vec<Vec<&str>> = Vec::new();
    for name in order {
        let row = depth[name];
        if rows.len() <= row {
            rows.resize(row + 1, Vec::new());
        }
        rows[row].push(name);
    }
    rows
}

/// The SVG of a flow.
pub fn diagram(flow: &Flow) -> String {
    let rows = rows(flow);
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let width = MARGIN * 2 + widest as i64 * WIDTH + (widest as i64 - 1) * GAP_X + 120;
    let height = MARGIN * 2 + rows.len().max(1) as i64 * (HEIGHT + GAP_Y) - GAP_Y;
    let mut at: BTreeMap<&str, (i64, i64, usize)> = BTreeMap::new();
    for (row, names) in rows.iter().enumerate() {
        let used = names.len() as i64 * WIDTH + (names.len() as i64 - 1) * GAP_X;
        let left = (width - 120 - used) / 2;
        for (column, name) in names.iter().enumerate() {
            let x = left + column as i64 * (WIDTH + GAP_X);
            let y = MARGIN + row as i64 * (HEIGHT + GAP_Y);
            at.insert(name, (x, y, row));
        }
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"13\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker></defs>",
        escape(&flow.name)
    );
    // Arrows first, so the boxes sit on top of them.
    for (name, block) in &flow.blocks {
        let Some(&(x, y, row)) = at.get(name.as_str()) else {
            continue;
        };
        let branches = block.branches();
        let count = branches.len() as i64;
        for (index, (branch, target)) in branches.iter().enumerate() {
            let Some(&(tx, ty, target_row)) = at.get(*target) else {
                continue;
            };
            let start_x = x + WIDTH * (index as i64 + 1) / (count + 1);
            let start_y = y + HEIGHT;
            let end_x = tx + WIDTH / 2;
            let (path, label_x, label_y) = if target_row > row {
                // Down: the label sits by the arrow's start, so that branches to one block
                // keep their names apart.
                (
                    format!(
                        "M{start_x},{start_y} C{start_x},{} {end_x},{} {end_x},{ty}",
                        start_y + GAP_Y / 2,
                        ty - GAP_Y / 2
                    ),
                    start_x,
                    start_y + 16,
                )
            } else {
                // Back (or sideways) to an earlier row: from the box's right side, round the
                // right-hand margin, into the target's right side.
                let side = width - 60;
                let (from_x, from_y) = (x + WIDTH, y + HEIGHT / 2);
                (
                    format!(
                        "M{from_x},{from_y} C{side},{from_y} {side},{} {},{}",
                        ty + HEIGHT / 2,
                        tx + WIDTH,
                        ty + HEIGHT / 2
                    ),
                    side - 8,
                    (from_y + ty + HEIGHT / 2) / 2,
                )
            };
            let _ = write!(
                svg,
                "<path d=\"{path}\" fill=\"none\" stroke=\"#555\" stroke-width=\"1.4\" marker-end=\"url(#arrow)\"/>\
                 <text x=\"{label_x}\" y=\"{label_y}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
                escape(branch)
            );
        }
    }
    for (name, block) in &flow.blocks {
        let Some(&(x, y, _)) = at.get(name.as_str()) else {
            continue;
        };
        let (label, fill) = kind(block);
        let detail = match block {
            Block::Say { text, .. } => shorten(text, 16),
            Block::CheckHours { queue, .. }
            | Block::TransferToAssignedAgent { queue, .. }
            | Block::TransferToQueue { queue, .. }
            | Block::CheckStaffing { queue, .. } => format!("queue {}", shorten(queue, 20)),
            Block::InvokeWebhook { url, .. } => shorten(url, 26),
            _ => String::new(),
        };
        let start = if *name == flow.start {
            " stroke-width=\"2.5\""
        } else {
            ""
        };
        let _ = write!(
            svg,
            "<g><rect x=\"{x}\" y=\"{y}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" rx=\"8\" fill=\"{fill}\" stroke=\"#444\"{start}/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#666\">{}</text></g>",
            x + WIDTH / 2,
            y + 18,
            escape(&shorten(name, 28)),
            x + WIDTH / 2,
            y + 35,
            label,
            x + WIDTH / 2,
            y + 50,
            escape(&detail)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::seed_flow;

    #[test]
    fn every_block_and_branch_is_drawn_and_text_is_escaped() {
        let mut flow = seed_flow("support");
        flow.blocks.insert(
            "orphan <b>".into(),
            Block::Say {
                text: "a & b".into(),
                next: "end".into(),
            },
        );
        let svg = diagram(&flow);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect ").count(), flow.blocks.len());
        let branches: usize = flow
            .blocks
            .values()
            .map(|block| block.branches().len())
            .sum();
        assert_eq!(svg.matches("marker-end=").count(), branches);
        assert!(svg.contains("orphan &lt;b&gt;") && svg.contains("a &amp; b"));
        assert!(!svg.contains("<b>") && !svg.contains("<script"));
        // The start block is drawn heavier, and the rows follow the distance from it.
        assert_eq!(svg.matches("stroke-width=\"2.5\"").count(), 1);
        assert_eq!(
            rows(&flow),
            [
                vec!["hours"],
                vec!["closing-message", "closed"],
                vec!["look-up", "end"],
                vec!["assigned-agent"],
                vec!["nobody"],
                vec!["orphan <b>"],
            ]
        );
    }
}
