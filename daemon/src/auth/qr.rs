//! The verification URI as a QR code made of text, two module rows per line with half-block
//! characters (a 60-character URL takes about 37 columns by 19 lines).
//!
//! Light modules are drawn, dark ones left blank, as `qrencode -t UTF8` does: right on the
//! usual dark terminal, inverted (which phone cameras read too) on a light one. The URL and
//! code are always printed as text as well (RFC 8628 §3.3.1): a client that cannot show the
//! characters loses only the picture.

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the code.
const QUIET: usize = 2;

/// The QR code of `uri`, or `None` if it is too long to encode.
pub fn render(uri: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::L).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET || y < QUIET || x >= width + QUIET || y >= width + QUIET {
            return true;
        }
        colors.get((y - QUIET) * width + (x - QUIET)) != Some(&Color::Dark)
    };
    let size = width + 2 * QUIET;
    let mut out = String::new();
    for y in (0..size).step_by(2) {
        for x in 0..size {
            let top = light(x, y);
            let bottom = y + 1 >= size || light(x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typical URI renders as a compact square block of text.
    #[test]
    fn renders_compactly() {
        let q = render("https://idp.example.com/realms/corp/device?user_code=WDJB-MJHT").unwrap();
        let lines: Vec<&str> = q.lines().collect();
        let width = lines[0].chars().count();
        assert!(width <= 45, "{width}");
        assert!(lines.len() <= width / 2 + 1);
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // Finder pattern corners make the first row mostly light-on-dark transitions.
        assert!(q.contains('▄') || q.contains('▀'));
    }

    /// Something too long to encode gives no picture rather than an error.
    #[test]
    fn too_long_is_none() {
        assert!(render(&"x".repeat(5000)).is_none());
    }
}
