"""Tiny random diffusers models (seconds on a CPU) for the tests and the GPU script.

Head dim 64 so that the CUDA kernels (head dims 64 and 128) take them too.
"""

import torch


def wan_transformer(seed=0, layers=3, heads=2, head_dim=64, in_channels=4, text_dim=32):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
        in_channels=in_channels, out_channels=in_channels, text_dim=text_dim, freq_dim=32,
        ffn_dim=64, num_layers=layers, rope_max_seq_len=64).eval()


def wan_inputs(batch=1, frames=5, height=16, width=16, channels=4, text=7, text_dim=32,
               timestep=500.0, seed=1, device="cpu", dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, frames, height, width, generator=g)
    enc = torch.randn(batch, text, text_dim, generator=g)
    t = torch.full((batch,), float(timestep))
    return dict(hidden_states=x.to(device, dtype), timestep=t.to(device),
                encoder_hidden_states=enc.to(device, dtype))


def hunyuan_transformer(seed=0, layers=2, single_layers=2, heads=2, head_dim=64, in_channels=4,
                        text_dim=32, pooled_dim=16, image_condition_type=None, out_channels=None):
    from diffusers import HunyuanVideoTransformer3DModel

    torch.manual_seed(seed)
    # Rotary axes must add up to the head dim.
    axes = (16, 24, 24) if head_dim == 64 else (head_dim // 4, 3 * head_dim // 8, 3 * head_dim // 8)
    return HunyuanVideoTransformer3DModel(
        in_channels=in_channels, out_channels=out_channels or in_channels, num_attention_heads=heads,
        attention_head_dim=head_dim, num_layers=layers, num_single_layers=single_layers,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1, qk_norm="rms_norm",
        guidance_embeds=True, text_embed_dim=text_dim, pooled_projection_dim=pooled_dim,
        rope_theta=256.0, rope_axes_dim=axes, image_condition_type=image_condition_type).eval()


def hunyuan_inputs(batch=2, frames=5, height=16, width=16, channels=4, text=12, valid=(9, 5),
                   text_dim=32, pooled_dim=16, timestep=500.0, seed=1, device="cpu",
                   dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, frames, height, width, generator=g)
    enc = torch.randn(batch, text, text_dim, generator=g)
    mask = torch.zeros(batch, text, dtype=torch.bool)
    for i in range(batch):
        mask[i, : valid[i % len(valid)]] = True
    pooled = torch.randn(batch, pooled_dim, generator=g)
    return dict(hidden_states=x.to(device, dtype), timestep=torch.full((batch,), float(timestep)).to(device),
                encoder_hidden_states=enc.to(device, dtype), encoder_attention_mask=mask.to(device),
                pooled_projections=pooled.to(device, dtype),
                guidance=torch.full((batch,), 5000.0).to(device))


def _tokenizer(extra=None, split_punctuation=True):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "</s>", "<unk>"] + "a cat dog walks runs on the grass in snow realistic style".split()
    vocab = {w: i for i, w in enumerate(words)}
    vocab.update(extra or {})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = (pre_tokenizers.Whitespace() if split_punctuation
                         else pre_tokenizers.WhitespaceSplit())
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)


def wan_pipeline(seed=0):
    """A complete WanPipeline (tokenizer, UMT5 encoder, VAE, transformer, scheduler) of
    random weights; 16 latent channels (the VAE's latent statistics have 16 entries)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=32, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)).eval()
    vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True]).eval()
    transformer = wan_transformer(seed=seed, layers=2, in_channels=16, text_dim=32)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return WanPipeline(tokenizer=_tokenizer(), text_encoder=text_encoder, transformer=transformer,
                       vae=vae, scheduler=scheduler)


def hunyuan_pipeline(seed=0):
    """A complete HunyuanVideoPipeline (Llama and CLIP text encoders with word-level
    tokenizers built in code, VAE, transformer, scheduler) of random weights; 4 latent
    channels, text width 16, pooled width 8."""
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoPipeline)
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    torch.manual_seed(seed)
    llama = LlamaModel(LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, bos_token_id=2,
        eos_token_id=1)).eval()
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=2,
        eos_token_id=1, projection_dim=8)).eval()
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4, up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        mid_block_add_attention=False).eval()
    transformer = hunyuan_transformer(seed=seed, layers=1, single_layers=1, in_channels=4,
                                      text_dim=16, pooled_dim=8)
    return HunyuanVideoPipeline(text_encoder=llama, tokenizer=_tokenizer(), transformer=transformer,
                                vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                                text_encoder_2=clip, tokenizer_2=_tokenizer())


# The HunyuanVideo prompt template for the word-level tokenizers above (the stock template
# assumes Llama's tokenizer): the prompt alone.
HUNYUAN_TEMPLATE = {"template": "{}", "crop_start": 0}


# --- Wan2.2-TI2V-5B, Wan VACE, SkyReels-V2, HunyuanVideo-I2V (issue 15) ---------------------

def wan_vace_transformer(seed=0, layers=3, heads=2, head_dim=64, in_channels=4, text_dim=32,
                         vace_layers=(0, 2), vace_in_channels=6):
    from diffusers import WanVACETransformer3DModel

    torch.manual_seed(seed)
    return WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
        in_channels=in_channels, out_channels=in_channels, text_dim=text_dim, freq_dim=32,
        ffn_dim=64, num_layers=layers, rope_max_seq_len=64, vace_layers=list(vace_layers),
        vace_in_channels=vace_in_channels).eval()


def skyreels_transformer(seed=0, layers=3, heads=2, head_dim=64, in_channels=4, text_dim=32,
                         num_frame_per_block=1):
    from diffusers import SkyReelsV2Transformer3DModel

    torch.manual_seed(seed)
    return SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
        in_channels=in_channels, out_channels=in_channels, text_dim=text_dim, freq_dim=32,
        ffn_dim=64, num_layers=layers, rope_max_seq_len=64, inject_sample_info=True,
        num_frame_per_block=num_frame_per_block).eval()


def _umt5(seed=0):
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    return UMT5EncoderModel(UMT5Config(
        vocab_size=32, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)).eval()


def _wan_vae(seed=0):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True]).eval()


def wan_vace_pipeline(seed=0):
    """WanVACEPipeline: 16 latent channels, VAE stride 8, so the control input has
    2 x 16 (inactive, reactive) + 8 x 8 (mask) = 96 channels."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanVACEPipeline

    transformer = wan_vace_transformer(seed=seed, layers=2, in_channels=16, vace_layers=(0, 1),
                                       vace_in_channels=96)
    return WanVACEPipeline(tokenizer=_tokenizer(), text_encoder=_umt5(seed), vae=_wan_vae(seed),
                           transformer=transformer,
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))


def skyreels_df_pipeline(seed=0):
    """SkyReelsV2DiffusionForcingPipeline (the long-video pipeline): 16 latent channels."""
    from diffusers import SkyReelsV2DiffusionForcingPipeline, UniPCMultistepScheduler

    transformer = skyreels_transformer(seed=seed, layers=2, in_channels=16)
    return SkyReelsV2DiffusionForcingPipeline(
        tokenizer=_tokenizer(), text_encoder=_umt5(seed), transformer=transformer,
        vae=_wan_vae(seed), scheduler=UniPCMultistepScheduler(
            flow_shift=8.0, prediction_type="flow_prediction", use_flow_sigmas=True))


def hunyuan_i2v_pipeline(seed=0):
    """HunyuanVideoImageToVideoPipeline: a tiny LLaVA (CLIP vision tower of 49 patches, Llama
    text model) puts the image's tokens in the text stream; the transformer takes the image
    latent concatenated to the noise (latent_concat: 4 + 4 + 1 channels in, 4 out). Run it
    with HUNYUAN_I2V_TEMPLATE (the stock template assumes Llama's chat tokenizer)."""
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoImageToVideoPipeline)
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig,
                              LlamaConfig, LlavaConfig, LlavaForConditionalGeneration)

    torch.manual_seed(seed)
    llava = LlavaForConditionalGeneration(LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=8, intermediate_size=16, projection_dim=8,
                                       num_attention_heads=2, num_hidden_layers=2, image_size=224,
                                       patch_size=32),
        text_config=LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                pad_token_id=0, bos_token_id=2, eos_token_id=1),
        pad_token_id=0, image_token_index=31)).eval()
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=2,
        eos_token_id=1, projection_dim=8)).eval()
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4, up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        mid_block_add_attention=False).eval()
    transformer = hunyuan_transformer(seed=seed, layers=1, single_layers=1, in_channels=9,
                                      out_channels=4, text_dim=16, pooled_dim=8,
                                      image_condition_type="latent_concat")
    processor = CLIPImageProcessor(crop_size=224, size=224, do_center_crop=True, do_resize=True,
                                   do_normalize=True)
    return HunyuanVideoImageToVideoPipeline(
        text_encoder=llava, transformer=transformer, vae=vae,
        tokenizer=_tokenizer({"<|end_header_id|>": 30, "imagetoken": 31}, split_punctuation=False),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), text_encoder_2=clip,
        tokenizer_2=_tokenizer(), image_processor=processor)


# Llama-3's chat layout in miniature (the pipeline crops at its <|end_header_id|> tokens): a
# system and a user header, the image token (expanded to the tiny LLaVA's 7 x 7 image
# features at 4..52), the prompt from position 5, then the 4 tokens of the assistant header.
HUNYUAN_I2V_TEMPLATE = {
    "template": "a <|end_header_id|> a <|end_header_id|> imagetoken {} a a a <|end_header_id|>",
    "crop_start": 5, "image_emb_len": 49, "image_emb_start": 4, "image_emb_end": 53}

def mochi_transformer(seed=0, layers=2, heads=2, head_dim=64, in_channels=4, text_dim=32,
                      pooled_dim=32):
    from diffusers import MochiTransformer3DModel

    torch.manual_seed(seed)
    model = MochiTransformer3DModel(
        patch_size=2, num_attention_heads=heads, attention_head_dim=head_dim, num_layers=layers,
        pooled_projection_dim=pooled_dim, in_channels=in_channels, text_embed_dim=text_dim,
        time_embed_dim=32, max_sequence_length=16).eval()
    # Zero-initialised rotary frequencies would make the rotation a no-op: randomise them.
    torch.nn.init.normal_(model.pos_frequencies, std=0.5)
    return model


def mochi_inputs(batch=2, frames=5, height=16, width=16, channels=4, text=12, valid=(9, 5),
                 text_dim=32, timestep=500.0, seed=1, device="cpu", dtype=torch.float32):
    """Text padded at the end (T5's padding); ``valid`` tokens per batch element. A tuple of
    index lists instead gives a mask with holes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, frames, height, width, generator=g)
    enc = torch.randn(batch, text, text_dim, generator=g)
    mask = torch.zeros(batch, text, dtype=torch.long)
    for i in range(batch):
        v = valid[i % len(valid)]
        if isinstance(v, int):
            mask[i, :v] = 1
        else:
            mask[i, list(v)] = 1
    return dict(hidden_states=x.to(device, dtype), encoder_hidden_states=enc.to(device, dtype),
                timestep=torch.full((batch,), float(timestep)).to(device),
                encoder_attention_mask=mask.to(device))


def ltx_transformer(seed=0, layers=2, heads=2, head_dim=64, in_channels=8, text_dim=32):
    from diffusers import LTXVideoTransformer3DModel

    torch.manual_seed(seed)
    return LTXVideoTransformer3DModel(
        in_channels=in_channels, out_channels=in_channels, patch_size=1, patch_size_t=1,
        num_attention_heads=heads, attention_head_dim=head_dim, cross_attention_dim=heads * head_dim,
        num_layers=layers, caption_channels=text_dim).eval()


def ltx_inputs(batch=2, frames=5, height=8, width=8, channels=8, text=12, valid=(9, 5),
               text_dim=32, timestep=500.0, seed=1, device="cpu", dtype=torch.float32):
    """Packed latents [B, frames * height * width, C] as the LTX pipeline passes them."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames * height * width, channels, generator=g)
    enc = torch.randn(batch, text, text_dim, generator=g)
    mask = torch.zeros(batch, text, dtype=torch.long)
    for i in range(batch):
        mask[i, : valid[i % len(valid)]] = 1
    return dict(hidden_states=x.to(device, dtype), encoder_hidden_states=enc.to(device, dtype),
                timestep=torch.full((batch,), float(timestep)).to(device),
                encoder_attention_mask=mask.to(device), num_frames=frames, height=height,
                width=width, rope_interpolation_scale=(8 / 25, 32, 32))


def _t5(d_model=32):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=32, d_model=d_model, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)).eval()


def mochi_pipeline(seed=0):
    """A complete MochiPipeline (T5 encoder, VAE with Mochi's 8x spatial and 6x temporal
    compression, transformer, scheduler) of random weights; 12 latent channels (the VAE's
    latent statistics have 12 entries)."""
    from diffusers import AutoencoderKLMochi, FlowMatchEulerDiscreteScheduler, MochiPipeline

    torch.manual_seed(seed)
    vae = AutoencoderKLMochi(
        latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1)).eval()
    transformer = mochi_transformer(seed=seed, in_channels=12, text_dim=32)
    return MochiPipeline(scheduler=FlowMatchEulerDiscreteScheduler(invert_sigmas=True), vae=vae,
                         text_encoder=_t5(), tokenizer=_tokenizer(), transformer=transformer)


def ltx_pipeline(seed=0):
    """A complete LTXPipeline (T5 encoder, VAE with LTX-Video's 32x spatial and 8x temporal
    compression, transformer, scheduler) of random weights; 8 latent channels."""
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline

    torch.manual_seed(seed)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=4, patch_size_t=1,
        encoder_causal=True, decoder_causal=False).eval()
    transformer = ltx_transformer(seed=seed, in_channels=8, text_dim=32)
    return LTXPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=_t5(),
                       tokenizer=_tokenizer(), transformer=transformer)


def wan22_ti2v_5b_pipeline(seed=0):
    """A WanPipeline configured as Wan2.2-TI2V-5B's: its VAE (48 latent channels, patchified,
    16x spatial compression), a transformer taking 48 channels and expand_timesteps (one
    timestep per token; the image-to-video pipeline made from it puts the image in the first
    latent frame); random weights, tiny."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=32, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)).eval()
    vae = AutoencoderKLWan(base_dim=16, z_dim=48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True], is_residual=True,
                           in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=16,
                           latents_mean=[0.0] * 48, latents_std=[1.0] * 48).eval()
    transformer = wan_transformer(seed=seed, layers=2, in_channels=48, text_dim=32)
    return WanPipeline(tokenizer=_tokenizer(), text_encoder=text_encoder, transformer=transformer,
                       vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
                       expand_timesteps=True)
