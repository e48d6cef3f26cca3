//! `POST /compare` with `model=product`: the real server, the bundled photo model, held-out product photos
//! from `examples/images` and odd encodings from `tests/fixtures/images`.

use std::io::Cursor;

use crate::common::{form, repo_path, Reply, Server};
use image::{imageops::FilterType, ImageFormat};

fn read(relative: &str) -> Vec<u8> {
    let path = repo_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn compare_product(server: &Server, a: &[u8], b: &[u8]) -> Reply {
    server
        .post_form(
            "/compare",
            form(&[("image_a", a), ("image_b", b)]).text("model", "product"),
        )
        .await
}

/// The photo and its reseller copy (mirrored, cropped, bannered, recompressed) match; two different red
/// products on white do not. All three photos come from sources the model never trained on.
#[tokio::test]
async fn an_edited_copy_matches_and_another_product_does_not() {
    let server = Server::start(&[]).await;
    let original = read("examples/images/product-indycar.jpg");
    let edited = read("examples/images/product-indycar-edited.jpg");
    let other = read("examples/images/product-toolbox.jpg");

    let copy = compare_product(&server, &original, &edited).await.ok();
    assert_eq!(copy["model"], "product");
    assert_eq!(copy["match"], true, "{copy}");

    let different = compare_product(&server, &original, &other).await.ok();
    assert_eq!(different["match"], false, "{different}");
    assert!(
        copy["distance"].as_f64() < different["distance"].as_f64(),
        "{copy} vs {different}"
    );
}

/// Odd encodings are read as what they show: each matches its plain twin; a 2400x1800 JPEG (decoded at
/// reduced scale) matches the same photo at 640x480.
#[tokio::test]
async fn odd_and_large_photos_are_read_as_what_they_show() {
    let server = Server::start(&[]).await;
    let pairs = [
        ("cmyk.jpg", "cmyk_expected.png"),
        ("rgb16.png", "rgb16_as_8bit.png"),
        ("exif_rotate6.jpg", "exif_rotate6_upright.jpg"),
        ("palette_alpha.png", "palette_alpha.png"),
    ];
    for (a, b) in pairs {
        let a = read(&format!("tests/fixtures/images/{a}"));
        let b = read(&format!("tests/fixtures/images/{b}"));
        let answer = compare_product(&server, &a, &b).await.ok();
        assert_eq!(answer["match"], true, "{answer}");
    }

    let photo = read("examples/images/product-indycar.jpg");
    let large = image::load_from_memory(&photo)
        .unwrap()
        .resize_exact(2400, 1800, FilterType::Triangle);
    let mut jpeg = Cursor::new(Vec::new());
    large.to_rgb8().write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
    let answer = compare_product(&server, &photo, jpeg.get_ref()).await.ok();
    assert_eq!(answer["match"], true, "{answer}");
}

/// `"explain": true`: inside a larger page the box lies where the photo was pasted and covers less of the
/// page than the photo's own box covers of the photo; each heatmap is a PNG the shape of its image. A model
/// without located contributions answers without an explanation, as `/info` says.
#[tokio::test]
async fn explain_says_where_a_pasted_photo_lies_in_the_page() {
    let server = Server::start(&[]).await;
    let photo = image::load_from_memory(&read("examples/images/product-toolbox.jpg"))
        .unwrap()
        .to_rgb8();
    let (pw, ph) = (photo.width(), photo.height());
    let mut page = image::RgbImage::from_pixel(pw * 2, ph * 2, image::Rgb([250, 250, 250]));
    let (px, py) = (pw * 9 / 10, ph / 2);
    image::imageops::replace(&mut page, &photo, i64::from(px), i64::from(py));
    let mut page_png = Cursor::new(Vec::new());
    page.write_to(&mut page_png, ImageFormat::Png).unwrap();

    let reply = server
        .post_form(
            "/compare",
            form(&[
                ("image_a", &read("examples/images/product-toolbox.jpg")),
                ("image_b", page_png.get_ref()),
            ])
            .text("model", "product")
            .text("explain", "true"),
        )
        .await
        .ok();

    let explain = &reply["explain"];
    for (side, (w, h)) in [("image_a", (pw, ph)), ("image_b", (pw * 2, ph * 2))] {
        let region = &explain[side];
        assert_eq!(
            (region["width"].as_u64(), region["height"].as_u64()),
            (Some(w.into()), Some(h.into()))
        );
        let bbox: Vec<u64> = region["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(
            bbox[0] < bbox[2] && bbox[2] <= w.into() && bbox[1] < bbox[3] && bbox[3] <= h.into(),
            "{region}"
        );
        let coverage = region["coverage"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&coverage), "{coverage}");
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            region["heatmap"].as_str().unwrap(),
        )
        .unwrap();
        let heatmap = image::load_from_memory(&png).unwrap();
        assert_eq!(heatmap.width().max(heatmap.height()), 64);
    }
    // The page's box holds the pasted photo's centre, and covers less of the page than the photo's own.
    let bbox: Vec<u64> = explain["image_b"]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let centre = (u64::from(px + pw / 2), u64::from(py + ph / 2));
    assert!(
        bbox[0] <= centre.0 && centre.0 < bbox[2] && bbox[1] <= centre.1 && centre.1 < bbox[3],
        "{bbox:?}"
    );
    assert!(
        explain["image_b"]["coverage"].as_f64() < explain["image_a"]["coverage"].as_f64(),
        "{explain}"
    );

    // Explaining a comparison never changes its distance, though the plain one decodes the JPEG at half scale.
    let plain = compare_product(
        &server,
        &read("examples/images/product-toolbox.jpg"),
        page_png.get_ref(),
    )
    .await
    .ok();
    // (The same inputs; only the batch they ran in may differ in the last bits.)
    let apart = (plain["distance"].as_f64().unwrap() - reply["distance"].as_f64().unwrap()).abs();
    assert!(apart < 1e-5, "{plain} {reply}");

    // The digit model has no located contributions: it answers, without `explain`, as `/info` says.
    let digits = server
        .post_form(
            "/compare",
            form(&[
                ("image_a", &read("examples/images/3-a.png")),
                ("image_b", &read("examples/images/3-b.png")),
            ])
            .text("explain", "true"),
        )
        .await
        .ok();
    assert!(digits.get("explain").is_none(), "{digits}");
    let info = server.get("/info").await.ok();
    let explains: Vec<(&str, bool)> = info["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["explains"].as_bool().unwrap()))
        .collect();
    assert!(
        explains.contains(&("mnist", false)) && explains.contains(&("product", true)),
        "{explains:?}"
    );
    let without = compare_product(
        &server,
        &read("examples/images/3-a.png"),
        &read("examples/images/3-b.png"),
    )
    .await
    .ok();
    assert!(without.get("explain").is_none());
}
