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
