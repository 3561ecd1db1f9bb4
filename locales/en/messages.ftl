# Parent Connection's messages to families, in English (the reference locale).
# Every message here exists in every other locale (tests: i18n::tests).
# Names, titles and teacher text are placeables: they are never translated.

## Lists and dates

# Two or more names: "Ava and Ben", "Ava, Ben and Cy" ($first holds all but the last).
list-and = { $first } and { $last }
list-separator = {", "}

# A due time on a digest line: "Mon Nov 23, 8:00 AM".
due-time = { $weekday } { $month } { $day }, { $time }
# The date of a digest's subject: "Nov 23, 2026".
subject-date = { $month } { $day }, { $year }
# Hours and minutes: "8:00 AM".
clock = { $hour12 }:{ $minute } { $ampm }

weekday-1 = Mon
weekday-2 = Tue
weekday-3 = Wed
weekday-4 = Thu
weekday-5 = Fri
weekday-6 = Sat
weekday-7 = Sun

month-1 = Jan
month-2 = Feb
month-3 = Mar
month-4 = Apr
month-5 = May
month-6 = Jun
month-7 = Jul
month-8 = Aug
month-9 = Sep
month-10 = Oct
month-11 = Nov
month-12 = Dec

## Invitations

invitation-subject = { $teacher } invited you to Parent Connection
invitation-hello = Hello { $guardian },
invitation-invited = { $teacher } invited you to chat about { $student } in Parent Connection, the way { $district } connects teachers with the parents and guardians of their students.
invitation-join-here = Join here:
invitation-ignore = If you were not expecting this message, you can ignore it; nothing happens until you join.
invitation-guardian-fallback = there
invitation-student-fallback = your child
invitation-sms = { $sender }: { $teacher } invited you to chat about { $student }. Join: { $link } Reply STOP to opt out.

## The weekly digest

digest-subject = { $tenant }: assignments for { $children } (week of { $date })
digest-hello = Hello { $guardian },
digest-intro = Here are the assignments of { $children } at { $tenant }: what was due in the past
    week and what is due in the coming week. Times are in { $zone }.
digest-due-past = Due in the past week:
digest-due-coming = Due in the coming week:
# $count chooses the plural form; $points is the number as written.
digest-points = { $count ->
        [one] ({ $points } point)
       *[other] ({ $points } points)
    }
digest-why = You receive this weekly summary because you are a parent or guardian contact of
    { $children } at { $tenant }. Questions about an assignment go to the class's teacher.
digest-stop = To stop receiving this weekly summary, open this link and confirm (invitations and
    messages from teachers are not affected):

## Dates in sentences

# "December 20, 2026".
long-date = { $month } { $day }, { $year }
month-long-1 = January
month-long-2 = February
month-long-3 = March
month-long-4 = April
month-long-5 = May
month-long-6 = June
month-long-7 = July
month-long-8 = August
month-long-9 = September
month-long-10 = October
month-long-11 = November
month-long-12 = December

## Pages

skip-to-content = Skip to content

## The join page

join-title = Join Parent Connection
join-title-accepted = Invitation already accepted
join-hello = Hello { $guardian },
join-invited = { $teacher } invited you to chat about { $student } in Parent Connection, the way { $district } connects teachers with the parents and guardians of their students.
join-already = You already accepted { $teacher }'s invitation to chat about { $student } in Parent Connection, the way { $district } connects teachers with the parents and guardians of their students.
join-valid-until = This invitation is valid until { $date }.
join-accept = Accept
join-go = Go to your page
join-ignore = If you were not expecting this invitation, you can close this page; nothing happens until you accept.
join-cancelled-title = Invitation cancelled
join-cancelled = This invitation was cancelled: the school's records no longer list you as a contact of this student. If you think this is a mistake, contact the school.
join-expired-title = Invitation expired
join-expired = This invitation has expired. Ask the teacher to send you a new one.
join-joined-title = You joined Parent Connection
join-accepted = You accepted { $teacher }'s invitation to chat about { $student }.
join-reachable = The teacher can now reach you in Parent Connection.

## The digest's unsubscribe page

unsubscribe-title = Unsubscribe from the weekly summary
unsubscribe-title-done = You are unsubscribed
unsubscribe-ask = Stop the weekly assignment summary from { $district } to { $email }?
unsubscribe-unaffected = Invitations and messages from teachers are not affected.
unsubscribe-button = Unsubscribe
unsubscribe-done = { $email } will not receive the weekly assignment summary from { $district } any more.
unsubscribe-your-address = your address
unsubscribe-undo = Invitations and messages from teachers are not affected. The school can turn the summary back on for you.
unsubscribe-already = { $email } does not receive the weekly assignment summary from { $district } any more.

## The guardian's page (/guardian) and the frame of signed-in pages

nav-guardian = Your page
who-guardian = Parent or guardian · { $tenant }
sign-out = Sign out
guardian-title = Your page
guardian-hello = Hello { $name }.
guardian-children = Your children and their teachers
guardian-no-children = The school lists no children for you right now.
guardian-no-teachers = No teachers are listed for { $child } right now.
guardian-chat-with = Chat with { $teacher } about { $child }
guardian-chats = Your chats
guardian-no-chats = You have no chats yet.
guardian-chat-line = About { $child } with { $teacher } · started { $date }
guardian-next-chats = Next page of chats
guardian-messages = Messages you get
guardian-digest = Weekly assignment summary
guardian-digest-off = You unsubscribed: { $email } does not get the weekly summary of your children's assignments.
guardian-digest-subscribe = Subscribe again
guardian-digest-on = { $email } gets the weekly summary of your children's assignments when your school sends it.
guardian-digest-unsubscribe = Unsubscribe
guardian-digest-no-email = Your school has no email address for you, so you get no weekly summary.
guardian-sms = Text messages
guardian-sms-off = We send no text messages to { $mobile }.
guardian-sms-allow = Allow text messages
guardian-sms-on = We may text { $mobile } (invitations from teachers, sign-in codes).
guardian-sms-stop = Stop text messages
guardian-sms-no-mobile = Your school has no mobile number for you.
guardian-language = Language
guardian-language-hint = The language of this page, your invitations and your weekly summary.
guardian-language-default = The school's language
guardian-language-save = Save language
guardian-done-chat = Your chat is open. The teacher sees it in Parent Connection.
guardian-done-digest-off = You are unsubscribed from the weekly summary.
guardian-done-digest-on = You will get the weekly summary again.
guardian-done-sms-off = We will not send you text messages.
guardian-done-sms-on = You will get text messages from us again.
guardian-done-language = Your language is saved.
guardian-blocked = { $teacher } does not accept chats from you. You can still contact the school.

## Forms

# The language named in itself (language links).
language-name = English

form-problem = There is a problem
form-error = Error

## Signing in with a code (/signin/code): before sign-in, in the browser's language

signin-language = Language
signin-code-title = Sign in with a code
signin-code-intro = Parents and guardians of students in { $district }: we send a 6-digit code to the email address or mobile number your school has on record for you. Type it on the next page, in this browser, to sign in. No password needed.
signin-code-address = Email address or mobile number
signin-code-address-hint = The one your school has on record for you.
signin-code-address-invalid = Enter your email address (like name@example.com) or your mobile number.
signin-code-send = Send me a code
signin-code-staff = School staff sign in with the district's account on the
signin-code-staff-link = sign-in page
signin-verify-title = Enter your code
# $minutes chooses the plural form.
signin-verify-sent = { $minutes ->
        [one] If this address is on record with { $district }, we sent a 6-digit code to it. The code works for { $minutes } minute, once.
       *[other] If this address is on record with { $district }, we sent a 6-digit code to it. The code works for { $minutes } minutes, once.
    }
signin-verify-code = Code
signin-verify-code-hint = The 6 digits from the message we sent you.
signin-verify-six-digits = Enter the 6 digits from the message we sent you.
signin-verify-refused = That code is not right or no longer works. Check the message and try again, or ask for a new code.
signin-verify-submit = Sign in
signin-verify-none = No message? Check the address, wait a minute, or
signin-verify-again = ask for a new code
signin-which-title = Which school district?
signin-which = This sign-in page serves several school districts. Open the sign-in link on your school's website or in a message from your school: it names your district.
signin-expired-title = Please start again
signin-expired = This sign-in form has expired or did not come from this site. Ask for a new code.
signin-expired-link = Ask for a code

## The sign-in code message

code-email-subject = Your Parent Connection sign-in code
code-email-hello = Hello,
code-email-intro = Your code to sign in to Parent Connection ({ $district }) is:
code-email-how = { $minutes ->
        [one] Type it on the sign-in page in the same browser. It works once, for { $minutes } minute; only the newest code you asked for works.
       *[other] Type it on the sign-in page in the same browser. It works once, for { $minutes } minutes; only the newest code you asked for works.
    }
code-email-ignore = If you did not ask for a code, you can ignore this message: nobody can sign in without it.
code-sms = { $minutes ->
        [one] { $sender }: your sign-in code is { $code }. It works once, for { $minutes } minute. Reply STOP to opt out.
       *[other] { $sender }: your sign-in code is { $code }. It works once, for { $minutes } minutes. Reply STOP to opt out.
    }
