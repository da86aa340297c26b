//! The fonts: egui's default (Ubuntu Light) first, then DejaVu Sans as a fallback for the
//! letters it lacks.
//!
//! Why a fallback: Ubuntu Light has no Vietnamese letters with two diacritics (the "ồ" of
//! "Vietnamese đồng") nor the ʻokina of "Tongan paʻanga", so currency names the server
//! offers, and company names the server accepts, drew a missing-glyph box. DejaVu Sans
//! (Bitstream Vera licence, DejaVu changes public domain; `assets/fonts/DejaVuSans-LICENSE.txt`)
//! covers Latin, Greek and Cyrillic in full and was already packaged where we build
//! (`fonts-dejavu-core`); it costs 760 KB in the binary. It is a fallback (lowest priority),
//! so text the default font can draw looks as before. Scripts neither covers (Chinese,
//! Japanese, Korean, Indic…) still show boxes: a CJK font would add megabytes.

use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
use egui::{Context, FontData, FontFamily};

const FALLBACK: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Adds the fallback font after the default ones of both families.
pub fn install(ctx: &Context) {
    let families = [FontFamily::Proportional, FontFamily::Monospace]
        .map(|family| InsertFontFamily { family, priority: FontPriority::Lowest })
        .to_vec();
    ctx.add_font(FontInsert::new("DejaVuSans", FontData::from_static(FALLBACK), families));
}

#[cfg(test)]
mod tests {
    use egui::FontId;

    use super::*;

    /// The names of the currencies `/signup/options` offers that are not plain ASCII, and
    /// company names in scripts the fallback covers.
    const TEXTS: &[&str] = &[
        "Icelandic króna",
        "Mongolian tögrög",
        "Nicaraguan córdoba",
        "Polish złoty",
        "Paraguayan guaraní",
        "São Tomé and Príncipe dobra",
        "Salvadoran colón",
        "Tongan paʻanga",
        "Venezuelan bolívar soberano",
        "Vietnamese đồng",
        "Công ty Cổ phần Ánh Dương",
        "Ελληνική Εταιρεία Α.Ε.",
        "ООО «Ромашка»",
        "Müller & Söhne — Œuvres ŠŽČ",
    ];

    fn missing(ctx: &Context) -> Vec<&'static str> {
        let font = FontId::proportional(14.0);
        ctx.fonts_mut(|f| TEXTS.iter().copied().filter(|t| !f.has_glyphs(&font, t)).collect())
    }

    #[test]
    fn every_offered_currency_name_and_common_company_names_have_glyphs() {
        let ctx = Context::default();
        // A first pass loads the fonts.
        ctx.run_ui(Default::default(), |_| {}).textures_delta.clear();
        assert!(!missing(&ctx).is_empty(), "the default font alone lacks some (the reason for the fallback)");
        install(&ctx);
        ctx.run_ui(Default::default(), |_| {}).textures_delta.clear();
        assert_eq!(missing(&ctx), Vec::<&str>::new());
    }
}
