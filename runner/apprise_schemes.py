"""Every URL scheme Apprise 2.3.0 knows, so that `runner check` can judge a
notification target without importing Apprise (about a second of imports).

tests/test_deliver_targets.py compares this list with the installed Apprise; after
an upgrade, regenerate it from `apprise.Apprise().details(show_disabled=True)`.
"""

from __future__ import annotations

APPRISE_VERSION = "2.3.0"

_LIST = """
46elks acs amqp amqps apprise apprises aprs atalk awswhatsapp azure bale bark barks
betterstack blink1 bluesky brevo bsky bulksms bulkvs burstsms chanify clickatell
clicksend cliq cm d7sms dapnet dbus deltachat deltachats dingtalk discord dot eight00com
elks emby embys enigma2 enigma2s evolution evolutions exotel fcm feishu firehydrant
flock flowtriq flowtriqs fluxer fluxers form forms freemobile gchat gio github glib
gnome goalert goalerts gorush gorushs gotify gotifys groundmail groupme growl guilded
gupshup hassio hassios httpsms humhub humhubs ifttt ilert incidentio infobip instagram
irc ircs jellyfin jellyfins jira join json jsons kakao kakaotalk kaleyra kavenegar kde
klr kodi kodis kook kudosity kumulos lametric lametrics lark lauther lfg line macosx
mailersend mailgun mailto mailtos mastodon mastodons matrix matrixs misskey misskeys
mmost mmosts mobilemessage mobilemsg mqtt mqtts msg91 msgbird ncloud nclouds nctalk
nctalks nexmo nostr notica noticas notifiarr notifico notificos notifyapp notifyre ntfy
ntfys o365 octopush onebot onebots onesignal opsgenie opsimate opsimates pagerduty
pagertree parsep parseps pbul pinglet pinglets pingram pjet pjets plivo postmark pover
prowl psafer psafers push pushdeer pushdeers pushed pushme pushplus pushward pushy qq qt
reddit resend revolt ringc rocket rockets rsyslog ryver schan sendgrid sendpulse
serwersms ses session sessions seven sfr signal signalgrid signals signl4 simplepush
sinch slack smpp smpps smsc smseagle smseagles smsmanager smsmgr smstunnel smtp2go sns
sogs sparkpost spike splunk spugpush spush squadcast stackfield strmlabs synology
synologys syslog telesign telnyx tgram threema toot toots trigv trigvs tweet twilio
twist twitter vapid viber victorops voipms vonage webex wechat wecom wecombot whapi
whatsapp windows workflow workflows wpush wxpusher wxteams x xbmc xbmcs xmatters xml
xmls xmpp xmpps youlmk zalo zcliq zohocliq zoom zulip
"""
SCHEMES = frozenset(_LIST.split())
