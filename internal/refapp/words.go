package refapp

// The vocabulary generated people are made of. Lists, not a faker library:
// the values must stay the same for a seed across Go and library versions.

var firstNames = []string{
	"Ann", "Ben", "Chloe", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas",
	"Kai", "Lena", "Marco", "Nora", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Tara",
	"Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Camille", "Diego",
	"Emma", "Farah", "Hannah", "Ivan", "Julia", "Kenji", "Lucas", "Maya", "Nikolai", "Olivia",
}

var lastNames = []string{
	"Lee", "Smith", "Garcia", "Muller", "Rossi", "Dubois", "Kowalski", "Tanaka", "Silva", "Novak",
	"Jensen", "Cohen", "Nguyen", "Khan", "Schmidt", "Moreau", "Larsen", "Fischer", "Costa", "Weber",
	"Martin", "Lopez", "Brown", "Wilson", "Petrov", "Yilmaz", "Sato", "Kim", "Okafor", "Haddad",
}

// botName is a Telegram display name and its Latin spelling (usernames are
// ASCII), with the interface language its speakers usually pick (first
// names only).
type botName struct{ display, latin, lang string }

var botFirstNames = []botName{
	{"Dilshod", "dilshod", "uz"}, {"Aziza", "aziza", "uz"}, {"Jasur", "jasur", "uz"}, {"Madina", "madina", "uz"},
	{"Sardor", "sardor", "uz"}, {"Nilufar", "nilufar", "uz"}, {"Bekzod", "bekzod", "uz"}, {"Gulnora", "gulnora", "uz"},
	{"Алексей", "aleksey", "ru"}, {"Мария", "mariya", "ru"}, {"Дмитрий", "dmitriy", "ru"}, {"Анна", "anna", "ru"},
	{"Тимур", "timur", "ru"}, {"Екатерина", "ekaterina", "ru"}, {"Рустам", "rustam", "ru"}, {"Ольга", "olga", "ru"},
	{"John", "john", "en"}, {"Sarah", "sarah", "en"}, {"Alex", "alex", "en"}, {"Mia", "mia", "en"},
}

var botLastNames = []botName{
	{"Karimov", "karimov", ""}, {"Tashkentova", "tashkentova", ""}, {"Rakhimov", "rakhimov", ""}, {"Yusupova", "yusupova", ""},
	{"Иванов", "ivanov", ""}, {"Смирнова", "smirnova", ""}, {"Алиев", "aliev", ""}, {"Ким", "kim", ""},
	{"Brown", "brown", ""}, {"🍌", "banana", ""},
}

var emailDomains = []string{"example.com", "example.org", "example.net"}

// country is a billing country: its address format, tax rate (basis
// points), the currency it pays in and the language its people mostly use.
type country struct {
	code, city, postal, lang, currency string
	taxBP                              int
	streets                            []string
}

var countries = []country{
	{"DE", "Berlin", "10115", "de", "eur", 1900, []string{"Torstraße", "Kastanienallee", "Oranienstraße"}},
	{"FR", "Paris", "75011", "fr", "eur", 2000, []string{"Rue Oberkampf", "Boulevard Voltaire", "Rue de la Roquette"}},
	{"ES", "Madrid", "28004", "es", "eur", 2100, []string{"Calle de Fuencarral", "Calle del Pez", "Gran Vía"}},
	{"IT", "Milano", "20121", "it", "eur", 2200, []string{"Via Brera", "Corso Garibaldi", "Via Solferino"}},
	{"NL", "Amsterdam", "1015 CJ", "nl", "eur", 2100, []string{"Prinsengracht", "Haarlemmerstraat", "Westerstraat"}},
	{"PL", "Warszawa", "00-001", "pl", "eur", 2300, []string{"ul. Nowy Świat", "ul. Marszałkowska", "ul. Hoża"}},
	{"GB", "London", "E1 6AN", "en", "gbp", 2000, []string{"Brick Lane", "Commercial Street", "Fournier Street"}},
	{"US", "Austin", "78701", "en", "usd", 0, []string{"Congress Ave", "E 6th St", "S Lamar Blvd"}},
	{"US", "San Francisco", "94110", "en", "usd", 0, []string{"Valencia St", "Mission St", "Guerrero St"}},
	{"CA", "Toronto", "M5V 2T6", "en", "usd", 1300, []string{"Queen St W", "King St W", "Spadina Ave"}},
	{"JP", "Tokyo", "150-0001", "ja", "usd", 1000, []string{"Jingumae", "Shibuya", "Ebisu"}},
	{"SG", "Singapore", "018956", "en", "usd", 900, []string{"Marina Blvd", "Orchard Rd", "Telok Ayer St"}},
	{"BR", "São Paulo", "01310-100", "pt", "usd", 0, []string{"Avenida Paulista", "Rua Augusta", "Rua Oscar Freire"}},
	{"IN", "Bengaluru", "560001", "en", "usd", 1800, []string{"MG Road", "Brigade Road", "Church Street"}},
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
	"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
}

var webLanguages = []string{"en", "de", "fr", "es", "it", "ja", "pt", "zh"}

var promptSubjects = []string{
	"a golden retriever astronaut floating above the Earth",
	"portrait of a woman with freckles in soft window light",
	"a cozy cabin in a snowy pine forest at dusk",
	"product shot of a matte black sneaker on a marble pedestal",
	"a cyberpunk street market in the rain with neon signs",
	"my cat wearing a tiny wizard hat",
	"isometric illustration of a tiny coffee shop",
	"a banana-shaped spaceship landing on Mars",
	"watercolor map of an imaginary island",
	"a vintage car on a coastal road at golden hour",
	"logo for a bakery called Crumb & Co",
	"a dragon made of autumn leaves",
	"replace the background with a sunny beach",
	"turn this photo into a Studio Ghibli style scene",
	"a minimalist poster of Tokyo at night",
	"a knight in ornate armor holding a lantern",
}

var promptStyles = []string{
	"cinematic lighting", "35mm film grain", "ultra detailed, 8k", "soft pastel palette",
	"studio photography", "oil painting", "flat vector art", "dramatic low angle", "bokeh background",
}

var negativePrompts = []string{
	"blurry, low quality, extra fingers", "text, watermark, logo", "deformed hands, bad anatomy",
	"oversaturated, jpeg artifacts", "nsfw, gore",
}

var styleTags = []string{"photorealistic", "anime", "watercolor", "3d-render", "pixel-art", "cinematic", "vintage", "minimal", "fantasy", "portrait"}

var webModels = []string{"gemini-2.5-flash-image", "gemini-3-pro-image-preview", "seedream-4.0", "flux-kontext-pro"}

var aspectRatios = []string{"1:1", "16:9", "9:16", "4:3", "3:2"}

var jobErrors = []string{
	"SAFETY: the prompt was blocked by the provider's content filter",
	"provider timeout after 120s",
	"RESOURCE_EXHAUSTED: model quota exceeded, retry later",
	"invalid reference image: unsupported format image/heic",
}

var safetyFlags = []string{"nsfw_low", "minor_detected_review", "violence_low", "celebrity_likeness"}

// staff are the admins who impersonate accounts and answer tickets.
var staff = []struct{ id, name string }{
	{"adm_8fJ2kQ9xLw3mNp7R", "Marta"}, {"adm_3Tz6yVb1Hc5dKe0S", "Tomás"}, {"adm_Q1w2E3r4T5y6U7i8", "Yuki"},
}

var impersonationReasons = []string{
	"support ticket: images missing from workbench history",
	"support ticket: credits not added after payment",
	"incident: failed generations on batch jobs",
	"chargeback investigation",
}

var banReasons = []string{"repeated attempts to generate prohibited content", "payment fraud", "quota evasion with multiple accounts"}

var riskKinds = []struct{ kind, reason string }{
	{"signin_anomaly", "sign-in from a new country within an hour of the last session"},
	{"payment_fraud", "card BIN country differs from IP country; Radar risk elevated"},
	{"abuse", "several prompts blocked by the safety filter in one day"},
	{"quota_evasion", "visitor id shared with three other accounts"},
}

var ticketTopics = []struct{ subject, body string }{
	{"Credits not added", "I paid for the 500 credit pack an hour ago but my balance did not change. Order attached."},
	{"Refund request", "I was charged twice for my subscription this month, please refund one of the payments."},
	{"Delete my account", "Please delete my account and all my images. Privacy request under GDPR."},
	{"Generation stuck", "My batch has been on 'processing' for 30 minutes. Can you check?"},
	{"Invoice with company details", "Could you reissue my invoice with our company name and VAT number?"},
	{"Export my data", "I would like a copy of all the data you hold about me."},
}

var staffReplies = []string{
	"Thanks for reaching out! I've looked into your account and fixed it; could you check again?",
	"Sorry about that. The refund is on its way and should arrive in 5-10 business days.",
	"We've received your request and will complete it within 30 days, as the privacy policy says.",
	"Could you send the checkout email or the order number so I can find the payment?",
}

var customerReplies = []string{"It works now, thank you!", "Here is the order number: see the attached receipt.", "Still not working, sorry.", "Great, thanks for the quick answer."}

var surveys = []string{"onboarding_2024", "nps_2025q1", "workbench_beta", "pricing_feedback"}

var surveyComments = []string{
	"Love the inpainting brush, wish it had layers.", "Too expensive for occasional use.",
	"Generations are fast, the prompt helper is great.", "Please add more aspect ratios.", "",
}

var features = []string{"inpainting", "batch_generation", "style_presets", "upscaler", "character_consistency"}

var migrationSources = []string{"nanobanana_v1", "firebase_export", "studio_beta"}

var newsletterTopics = []string{"product_updates", "tips", "offers", "community_showcase"}

var newsletterSources = []string{"signup_form", "settings", "checkout", "footer_form"}

var disputeReasons = []string{"fraudulent", "product_not_received", "duplicate", "subscription_canceled", "credit_not_processed"}

// pack is a credit pack or subscription plan and its price in minor units.
type pack struct {
	name    string
	credits int
	price   int
}

var creditPacks = []pack{{"starter_100", 100, 990}, {"creator_500", 500, 3990}, {"studio_2000", 2000, 12990}}

var plans = []pack{{"pro_monthly", 400, 1990}, {"pro_yearly", 5000, 19900}, {"studio_monthly", 1500, 4990}}

// Bot vocabulary.

var botPrompts = map[string][]string{
	"uz": {"mushukni kosmonavt qilib chiz", "Samarqand Registon kechasi, neon uslubda", "mening rasmimni multfilm qahramoniga aylantir", "tog'lardagi qishki uy, iliq chiroqlar"},
	"ru": {"сделай из моего фото аниме-персонажа", "кот в костюме супергероя на крыше", "портрет девушки в стиле масляной живописи", "футуристический Ташкент ночью"},
	"en": {"make me a cyberpunk portrait", "a banana wearing sunglasses on the beach", "turn my dog into a medieval knight", "studio headshot, soft light, grey background"},
}

var botModels = []struct {
	name    string
	credits int
}{{"nano-banana", 2}, {"nano-banana-pro", 5}, {"seedream-v4", 3}, {"flux-kontext-dev", 2}}

var botErrors = []string{"wavespeed: 429 Too Many Requests", "wavespeed: prediction failed: NSFW content detected", "telegram: file is too big", "context deadline exceeded"}

var starPacks = []struct{ stars, credits int }{{50, 20}, {100, 45}, {250, 120}, {500, 260}}

var updateTypes = []string{"message", "message", "message", "callback_query", "callback_query", "pre_checkout_query", "successful_payment", "inline_query", "my_chat_member"}

var logErrors = []string{"telegram: Bad Request: message is not modified", "telegram: Forbidden: bot was blocked by the user", "redis: connection pool timeout"}

var optoutSources = []string{"settings", "stop_command", "support"}
