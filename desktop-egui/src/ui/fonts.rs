//! The fonts: egui's default (Ubuntu Light) first, then DejaVu Sans and Droid Sans Fallback
//! for the letters it lacks.
//!
//! Why a fallback: Ubuntu Light has no Vietnamese letters with two diacritics (the "ồ" of
//! "Vietnamese đồng") nor the ʻokina of "Tongan paʻanga", so currency names the server
//! offers, and company names the server accepts, drew a missing-glyph box. DejaVu Sans
//! (Bitstream Vera licence, DejaVu changes public domain; `assets/fonts/DejaVuSans-LICENSE.txt`)
//! covers Latin, Greek and Cyrillic in full and was already packaged where we build
//! (`fonts-dejavu-core`); it costs 760 KB in the binary. It is a fallback (lowest priority),
//! so text the default font can draw looks as before.
//!
//! Chinese and Japanese company names come from Droid Sans Fallback (Apache 2.0,
//! `assets/fonts/DroidSansFallbackFull-LICENSE.txt`, Debian's `fonts-droid-fallback`): 4 MB
//! for the CJK ideographs and kana. It has no Hangul: Korean comes from NanumSquare Regular
//! (SIL OFL, `assets/fonts/NanumSquareR-LICENSE.txt`, Debian's `fonts-nanum`), 720 KB for all
//! 11,172 syllables. Indic and
//! other scripts that need shaping are not covered: egui lays glyphs out one by one, so even
//! a font with their letters would draw them wrongly.

use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
use egui::{Context, FontData, FontFamily};

const FALLBACK: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const CJK_FALLBACK: &[u8] = include_bytes!("../../assets/fonts/DroidSansFallbackFull.ttf");
const HANGUL_FALLBACK: &[u8] = include_bytes!("../../assets/fonts/NanumSquareR.ttf");

/// Adds the fallback fonts after the default ones of both families, in this order.
pub fn install(ctx: &Context) {
    for (name, data) in
        [("DejaVuSans", FALLBACK), ("DroidSansFallbackFull", CJK_FALLBACK), ("NanumSquareR", HANGUL_FALLBACK)]
    {
        let families = [FontFamily::Proportional, FontFamily::Monospace]
            .map(|family| InsertFontFamily { family, priority: FontPriority::Lowest })
            .to_vec();
        ctx.add_font(FontInsert::new(name, FontData::from_static(data), families));
    }
}

#[cfg(test)]
mod tests {
    use egui::FontId;

    use super::*;

    /// The names of the currencies `/signup/options` offers that are not plain ASCII, and
    /// company names in scripts the fallbacks cover.
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
        "北京星辰科技有限公司",
        "株式会社やまだ商事",
        "주식회사 한빛물산",
        "香港貿易（集團）有限公司",
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
