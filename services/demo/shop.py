"""The demo shop's words: its creators, their products, what their videos are about.

Fixed data, so a rerun replaces the same catalog objects. Accounts cover every platform; a
category's products carry a price range (CNY) the generator draws a shop price from.
"""

from __future__ import annotations

from shared.vocabulary import AdFormat, Platform

VIDEO_FORMATS = ("tutorial", "unboxing", "review", "vlog", "haul", "comparison")
AD_MIX: tuple[AdFormat, ...] = (
    ("native",) * 6 + ("pre_roll",) * 4 + ("overlay",) * 4 + ("banner",) * 2
)

ACCOUNTS: tuple[tuple[str, Platform, str, str, tuple[str, ...]], ...] = (
    ("acc-douyin-glowlab", "douyin", "glowlab", "光感实验室 Glow Lab", ("beauty", "skincare")),
    ("acc-kuaishou-snacks", "kuaishou", "snack_king", "零食大王 Snack King", ("snacks", "home")),
    ("acc-xhs-miastyle", "xiaohongshu", "mia_style", "Mia 穿搭日记", ("fashion", "beauty")),
    ("acc-channels-cozy", "wechat_channels", "cozyhome", "好物之家 Cozy Home", ("home", "snacks")),
    ("acc-bilibili-techdad", "bilibili", "techdad", "数码老爸 Tech Dad", ("digital",)),
    ("acc-tiktok-skinbyjo", "tiktok", "skinbyjo", "Skin by Jo", ("skincare", "beauty")),
    ("acc-instagram-lena", "instagram", "lena.fits", "Lena Fits", ("fashion",)),
    ("acc-youtube-gadgets", "youtube", "gadgetgrid", "Gadget Grid", ("digital", "home")),
)
# Lives run on the platforms where live commerce is big.
LIVE_ACCOUNTS = (0, 1, 2, 3, 5)


def _products(table: str) -> dict[str, tuple[tuple[str, int, int], ...]]:
    """``category | title | low | high`` lines: each category's products in table order."""
    products: dict[str, list[tuple[str, int, int]]] = {}
    for line in table.strip().splitlines():
        category, title, low, high = (cell.strip() for cell in line.split("|"))
        products.setdefault(category, []).append((title, int(low), int(high)))
    return {category: tuple(rows) for category, rows in products.items()}


# Per category: a product's title and its price range (CNY, low and high).
PRODUCTS = _products("""
beauty   | Velvet matte lipstick 丝绒哑光口红 | 79 | 189
beauty   | Cushion foundation 气垫粉底 | 129 | 329
beauty   | 12-colour eyeshadow palette 眼影盘 | 99 | 259
beauty   | Waterproof mascara 防水睫毛膏 | 59 | 139
beauty   | Setting spray 定妆喷雾 | 69 | 169
skincare | Hyaluronic serum 30ml 玻尿酸精华 | 139 | 399
skincare | Amino acid cleanser 氨基酸洁面 | 49 | 119
skincare | Sunscreen SPF50+ 防晒霜 | 89 | 199
skincare | Night repair cream 晚霜 | 199 | 599
skincare | Sheet masks ×10 面膜 | 59 | 149
fashion  | Oversized linen shirt 亚麻衬衫 | 159 | 359
fashion  | High-waist wide-leg jeans 阔腿牛仔裤 | 179 | 399
fashion  | Canvas tote bag 帆布托特包 | 69 | 169
fashion  | Chunky knit cardigan 针织开衫 | 199 | 459
fashion  | Chunky sneakers 老爹鞋 | 259 | 599
snacks   | Spicy konjac strips 辣条 ×20 | 19 | 39
snacks   | Mixed nuts gift box 每日坚果 | 59 | 129
snacks   | Freeze-dried fruit 冻干水果 | 29 | 69
snacks   | Instant hotpot 自热火锅 ×3 | 39 | 89
snacks   | Cold brew coffee ×12 冷萃咖啡 | 49 | 109
home     | Aroma diffuser 香薰机 | 99 | 259
home     | Memory foam pillow 记忆枕 | 89 | 229
home     | Storage boxes ×6 收纳盒 | 39 | 99
home     | Air fryer 4L 空气炸锅 | 259 | 599
home     | Silk pillowcase 真丝枕套 | 99 | 239
digital  | Wireless earbuds 无线耳机 | 199 | 699
digital  | 65W GaN charger 氮化镓充电器 | 89 | 199
digital  | Phone gimbal 手机稳定器 | 299 | 799
digital  | Ring light 补光灯 | 79 | 199
digital  | Smart watch 智能手表 | 399 | 1299
""")
TOPIC_WORDS = {
    "beauty": ("everyday makeup", "5-minute glam", "lipstick swatches", "dewy base"),
    "skincare": ("glass skin routine", "sunscreen test", "acne-safe picks", "night routine"),
    "fashion": ("autumn capsule", "office outfits", "thrift flip", "one jeans, five looks"),
    "snacks": ("spicy snack ranking", "midnight snacks", "office snack haul", "hotpot night"),
    "home": ("small flat makeover", "desk setup", "storage hacks", "cosy bedroom"),
    "digital": ("earbuds under 500", "creator kit", "charger showdown", "smartwatch week"),
}
FORMAT_TITLES = {
    "tutorial": "How to: {}",
    "unboxing": "Unboxing: {}",
    "review": "Honest review: {}",
    "vlog": "Vlog · {}",
    "haul": "Haul: {}",
    "comparison": "Side by side: {}",
}
CAMPAIGNS = (
    ("camp-glow-month", "Glow month", "sales", ("beauty", "skincare")),
    ("camp-snack-fest", "Snack festival", "sales", ("snacks", "home")),
    ("camp-new-season", "New-season fashion", "reach", ("fashion",)),
    ("camp-gadget-week", "Gadget weeks", "sales", ("digital", "home")),
)
# Typical daily spend (CNY) of one ad by format.
DAILY_SPEND = {
    "native": (300, 900),
    "pre_roll": (500, 1500),
    "overlay": (150, 500),
    "banner": (80, 250),
}
