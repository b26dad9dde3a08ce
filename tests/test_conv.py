"""The convolutional architecture (``--arch conv``): shapes for any image size (padded inside, cropped back),
the parameter count the memory check makes before building, colour images trained and sampled through the
command line, and the one-line errors for data it cannot take and bad channels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import condgen
from condgen.cli import main
from condgen.engine import CVAE
from condgen.engine.architecture import EmbeddingLayout, NetworkShapes
from condgen.engine.conv import ConvDecoder, ConvEncoder, padded_side
from condgen.runs.build import engine_parameters
from helpers import toy_config


def model_config(**model) -> condgen.ModelConfig:
    return condgen.ModelConfig.model_validate({"arch": "conv", "latent_dim": 4, "hidden": [16], **model})


def shapes(data_shape, *embeddings, latent=4, params=2) -> NetworkShapes:
    return NetworkShapes(tuple(data_shape), EmbeddingLayout(tuple(embeddings)), latent, params)


@pytest.mark.parametrize("shape, channels", [((3, 12, 10), [8, 16, 16]), ((1, 28, 28), [4, 8]), ((2, 5, 7), [4]),
                                             ((1, 1, 1), [2, 2])])
def test_a_conv_net_takes_and_gives_images_of_any_size(shape, channels):
    c, h, w = shape
    net = shapes(shape, (5,))
    enc, dec = ConvEncoder(net, channels, [16], "relu"), ConvDecoder(net, channels, [16], "relu")
    x, e = torch.rand(3, *shape), torch.rand(3, 5)
    mu, logvar = enc(x, e)
    assert mu.shape == logvar.shape == (3, 4)
    assert dec(torch.randn(3, 4), e).shape == (3, 2, c, h, w)  # (N, P, *data_shape)
    assert padded_side(h, len(channels)) % 2 ** len(channels) == 0 and padded_side(h, len(channels)) >= h


def test_the_decoders_maps_come_parameter_by_parameter_as_the_likelihoods_read_them():
    dec = ConvDecoder(shapes((2, 4, 4), latent=3), [4], [8], "relu")
    z = torch.randn(5, 3)
    maps = dec.stages(dec.head(z).view(5, *dec.start))  # (5, PARAMS * C, H, W): parameter 0's C maps first
    assert maps.shape == (5, 4, 4, 4)
    assert torch.equal(dec(z, torch.zeros(5, 0)), maps.reshape(5, 2, 2, 4, 4))


def test_a_spatial_embedding_joins_every_convolution_at_its_resolution():
    # a (3, 6, 5) map beside a flat (4,) embedding, on 6 x 5 images padded to 8 x 8 by three stages
    net = shapes((1, 6, 5), (4,), (3, 6, 5))
    enc, dec = ConvEncoder(net, [2, 2, 2], [8], "relu"), ConvDecoder(net, [2, 2, 2], [8], "relu")
    convs = [m for m in enc.stages if isinstance(m, torch.nn.Conv2d)]
    assert [m.in_channels for m in convs] == [1 + 4 + 3, 2 + 3, 2 + 3]  # x and the flat maps only at the input
    ups = [m for m in dec.stages if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [m.in_channels for m in ups] == [2 + 4 + 3, 2 + 3, 2 + 3, 2 + 3]
    assert dec.head[0][0].in_features == 4 + 4  # z and the flat embedding: the maps come in as channels
    flat, maps = torch.rand(2, 4), torch.rand(2, 3, 6, 5)
    e = torch.cat([flat, maps.flatten(1)], dim=1)
    assert dec(torch.randn(2, 4), e).shape == (2, 2, 1, 6, 5)
    # the decoder's output depends on the maps: a pixel of the map changes the parameters near it
    other = maps.clone()
    other[:, :, 0, 0] += 1
    delta = (dec(torch.zeros(2, 4), e) - dec(torch.zeros(2, 4), torch.cat([flat, other.flatten(1)], 1))).abs()
    assert delta[..., 0, 0].sum() > 0
    mu, _ = enc(torch.rand(2, 1, 6, 5), e)
    assert mu.shape == (2, 4)


def test_flat_embeddings_scale_and_shift_every_upsampling_stage():
    dec = ConvDecoder(shapes((1, 8, 8), (3,)), [4, 6], [8], "relu")
    assert [(m.linear.in_features, m.linear.out_features) for m in dec.film] == [(3, 2 * 4), (3, 2 * 4)]
    h, e = torch.rand(2, 4, 4, 4), torch.rand(2, 3)
    assert torch.equal(dec.film[0](h, e), h)  # zero at the start: the identity
    with torch.no_grad():
        dec.film[0].linear.bias.copy_(torch.tensor([1.0, 0, 0, -0.5, 0.25, 0, 0, 0]))  # gamma, then beta
    out = dec.film[0](h, e)
    assert torch.allclose(out[:, 0], 2 * h[:, 0] + 0.25) and torch.allclose(out[:, 3], 0.5 * h[:, 3])
    assert torch.equal(out[:, 1:3], h[:, 1:3])
    # the gradient reaches the modulation from its zero start, and without flat embeddings there is none
    dec(torch.randn(2, 4), e).square().sum().backward()
    assert dec.film[1].linear.weight.grad.abs().sum() > 0
    assert len(ConvDecoder(shapes((1, 8, 8), (2, 8, 8)), [4, 6], [8], "relu").film) == 0


def test_a_spatial_embedding_of_another_size_is_resized_to_the_images():
    net = shapes((1, 8, 8), (2, 4, 4))
    dec = ConvDecoder(net, [4, 4], [8], "relu")
    assert dec(torch.randn(3, 4), torch.rand(3, 2 * 4 * 4)).shape == (3, 2, 1, 8, 8)


def test_a_decoder_on_spatial_maps_alone_starts_from_learned_maps(recwarn):
    # no latent (a deterministic baseline) and no flat embedding: nothing for a dense layer to read
    dec = ConvDecoder(shapes((1, 8, 8), (2, 8, 8), latent=0), [4, 4], [8], "relu")
    assert not [w for w in recwarn if "zero-element" in str(w.message)]  # no Linear(0, n)
    maps = torch.rand(3, 2, 8, 8)
    out = dec(torch.zeros(3, 0), maps.flatten(1))
    assert out.shape == (3, 2, 1, 8, 8)
    assert not torch.equal(out[0], out[1])  # the rows differ by their maps alone
    out.sum().backward()
    assert dec.head.value.grad.abs().sum() > 0


def test_the_layout_splits_the_flat_embeddings_from_the_maps():
    layout = EmbeddingLayout(((2,), (1, 2, 2), (3,)))
    e = torch.arange(9.0).reshape(1, 9)
    flat, maps = layout.split(e)
    assert flat.tolist() == [[0.0, 1.0, 6.0, 7.0, 8.0]]
    assert maps[0].tolist() == [[[[2.0, 3.0], [4.0, 5.0]]]]
    assert (layout.width, layout.flat_width, layout.map_channels) == (9, 5, 1)


def test_a_conv_cvae_samples_the_datas_shape_and_its_parameters_are_counted_before_it_is_built():
    config = model_config(likelihood="logistic", prior="conditional", channels=[8, 16])
    model = CVAE((3, 12, 10), config, embeddings={"label": torch.nn.Embedding(4, 6)}, embed_dims={"label": 6})
    x = torch.rand(5, 3, 12, 10)
    terms = model(x, {"label": torch.tensor([0, 1, 2, 3, 0])})
    assert terms.neg_elbo.shape == (5,) and torch.isfinite(terms.neg_elbo).all()
    assert model.generate({"label": torch.tensor([1, 2])}, 2).shape == (2, 3, 12, 10)
    engine = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embeddings."))
    run_config = condgen.RunConfig.parse({"model": config.model_dump(),
                                          "conditioners": [{"name": "label", "config": {"num_classes": 4}}]})
    assert engine_parameters(run_config, (3, 12, 10), [(6,)]) == engine


def test_an_mlp_keeps_the_seeds_parameter_names():
    model = CVAE((1, 4, 4), condgen.ModelConfig(), embeddings={}, embed_dims={})
    assert [n for n, _ in model.named_parameters()][:4] == ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight",
                                                            "encoder.2.bias"]


def test_an_rgb_folder_trains_with_conv_and_samples_in_colour(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name, base in (("red", (210, 20, 20)), ("blue", (20, 20, 210))):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(16):
            pixels = np.clip(np.array(base) + rng.integers(-25, 25, (12, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "d" / name / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--dataset", "image-folder", "--data-dir", str(tmp_path / "d"), "--arch", "conv",
                 "--channels", "8", "16", "16", "--likelihood", "logistic", "--hidden", "32", "--latent-dim", "4",
                 "--conditioner", "label:num_classes=2", "--epochs", "25", "--batch-size", "8", "--lr", "0.01",
                 "--device", "cpu", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["arch"] == "conv"
    grid = np.asarray(Image.open(run / "samples.png").convert("RGB")).astype(int)
    assert (np.abs(grid[..., 0] - grid[..., 2]) > 60).any()  # colour: red and blue differ by far somewhere
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--condition", "label=red", "--num", "6", "--out", str(out)]) == 0
    red = np.load(out)
    assert red.shape == (6, 3, 12, 10) and red[:, 0].mean() > red[:, 2].mean() + 0.2  # red samples are red
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "3", "--json"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)["test_is_nll_bits_per_dim"] < 8


def test_conv_on_flat_data_and_bad_channels_are_one_line_config_errors(toy, tmp_path, capsys):
    x = np.random.default_rng(0).random((30, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", train_x=x, test_x=x[:5])
    assert main(["train", "--dataset", "npz", "--data-dir", str(tmp_path / "d.npz"), "--x-field", "x", "--arch",
                 "conv", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.arch = 'conv' takes images (C, H, W)" in err[0] and "[6]" in err[0], err
    assert not (tmp_path / "run").exists()
    for channels, shown in (([0, 8], "[0, 8]"), ([], "[]"), ([8] * 9, str([8] * 9))):
        with pytest.raises(condgen.ConfigError, match=r"model.channels must be 1 to 8 stages' channels"):
            condgen.RunConfig.parse({**toy_config().model_dump(), "model": {"arch": "conv", "channels": channels}})
